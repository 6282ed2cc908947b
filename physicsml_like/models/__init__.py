"""Model families; importing this registers them by name."""

from .allegro import AllegroModel, AllegroModelConfig
from .egnn import EGNNModel, EGNNModelConfig
from .nequip import NequIPModel, NequIPModelConfig

__all__ = ["AllegroModel", "AllegroModelConfig", "EGNNModel", "EGNNModelConfig", "NequIPModel", "NequIPModelConfig"]
