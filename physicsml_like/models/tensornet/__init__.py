"""TensorNet family: config, tensor layers, network, model."""

from .config import TensorNetModelConfig
from .layers import TensorEmbedding, TensorInteraction, TensorLinear
from .model import TensorNetModel
from .network import TensorNet, build_tensornet

__all__ = [
    "TensorEmbedding",
    "TensorInteraction",
    "TensorLinear",
    "TensorNet",
    "TensorNetModel",
    "TensorNetModelConfig",
    "build_tensornet",
]
