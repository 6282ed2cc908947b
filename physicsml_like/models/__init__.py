"""Model families; importing this registers them by name."""

from .ani import ANIModel, ANIModelConfig
from .egnn import EGNNModel, EGNNModelConfig
from .tensornet import TensorNetModel, TensorNetModelConfig

__all__ = ["ANIModel", "ANIModelConfig", "EGNNModel", "EGNNModelConfig", "TensorNetModel", "TensorNetModelConfig"]
