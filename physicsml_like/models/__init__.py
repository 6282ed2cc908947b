"""Model families; importing this registers them by name."""

from .egnn import EGNNModel, EGNNModelConfig
from .mace import MACEModel, MACEModelConfig

__all__ = ["EGNNModel", "EGNNModelConfig", "MACEModel", "MACEModelConfig"]
