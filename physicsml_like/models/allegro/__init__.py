"""Allegro family: config, layers, network, model."""

from .config import AllegroModelConfig
from .layers import AllegroLayer, PairTensorProduct, WeightedHarmonics
from .model import AllegroModel
from .network import Allegro, build_allegro

__all__ = ["Allegro", "AllegroLayer", "AllegroModel", "AllegroModelConfig", "PairTensorProduct", "WeightedHarmonics", "build_allegro"]
