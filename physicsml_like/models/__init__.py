"""Model families; importing this registers them by name."""

from .ani import ANIModel, ANIModelConfig
from .egnn import EGNNModel, EGNNModelConfig

__all__ = ["ANIModel", "ANIModelConfig", "EGNNModel", "EGNNModelConfig"]
