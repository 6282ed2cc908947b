"""MACE family: config, network and its layers, model."""

from .config import MACEModelConfig
from .convolution import Edges, EdgeTensorProduct
from .interaction import InteractionBlock, RadialMLP
from .linear import ElementLinear, IrrepsLinear
from .model import MACEModel
from .network import MACE, build_mace
from .product import ProductBasisBlock, SymmetricContraction
from .readout import Readout

__all__ = [
    "MACE",
    "EdgeTensorProduct",
    "Edges",
    "ElementLinear",
    "InteractionBlock",
    "IrrepsLinear",
    "MACEModel",
    "MACEModelConfig",
    "ProductBasisBlock",
    "RadialMLP",
    "Readout",
    "SymmetricContraction",
    "build_mace",
]
