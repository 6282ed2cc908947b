"""EGNN family: config, network, model."""

from .config import EGNNModelConfig
from .model import EGNNModel
from .network import EGNN, EGNNLayer, build_egnn

__all__ = ["EGNN", "EGNNLayer", "EGNNModel", "EGNNModelConfig", "build_egnn"]
