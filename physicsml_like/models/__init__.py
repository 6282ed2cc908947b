"""Model families; importing this registers them by name."""

from .ani import ANIModel, ANIModelConfig
from .egnn import EGNNModel, EGNNModelConfig
from .painn import PaiNNModel, PaiNNModelConfig
from .tensornet import TensorNetModel, TensorNetModelConfig

__all__ = [
    "ANIModel",
    "ANIModelConfig",
    "EGNNModel",
    "EGNNModelConfig",
    "PaiNNModel",
    "PaiNNModelConfig",
    "TensorNetModel",
    "TensorNetModelConfig",
]
