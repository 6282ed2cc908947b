"""NequIP family: config, layers, network, model."""

from .config import NequIPModelConfig
from .layers import EdgeConvolution, InteractionBlock, RadialFilter
from .model import NequIPModel
from .network import NequIP, build_nequip

__all__ = ["EdgeConvolution", "InteractionBlock", "NequIP", "NequIPModel", "NequIPModelConfig", "RadialFilter", "build_nequip"]
