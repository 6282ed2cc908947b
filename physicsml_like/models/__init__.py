"""Model families; importing this registers them by name."""

from .allegro import AllegroModel, AllegroModelConfig
from .ani import ANIModel, ANIModelConfig
from .egnn import EGNNModel, EGNNModelConfig
from .mace import MACEModel, MACEModelConfig
from .nequip import NequIPModel, NequIPModelConfig
from .painn import PaiNNModel, PaiNNModelConfig
from .tensornet import TensorNetModel, TensorNetModelConfig

__all__ = [
    "ANIModel",
    "ANIModelConfig",
    "AllegroModel",
    "AllegroModelConfig",
    "EGNNModel",
    "EGNNModelConfig",
    "MACEModel",
    "MACEModelConfig",
    "NequIPModel",
    "NequIPModelConfig",
    "PaiNNModel",
    "PaiNNModelConfig",
    "TensorNetModel",
    "TensorNetModelConfig",
]
