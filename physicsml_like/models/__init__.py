"""Model families; importing this registers them by name."""

from .egnn import EGNNModel, EGNNModelConfig

__all__ = ["EGNNModel", "EGNNModelConfig"]
