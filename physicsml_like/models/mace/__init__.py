"""MACE family: config, network and its layers, model."""

from .config import MACEModelConfig
from .interaction import EdgeTensorProduct, InteractionBlock
from .linear import ElementLinear, IrrepsLinear
from .model import MACEModel
from .network import MACE, build_mace
from .product import ProductBasisBlock, SymmetricContraction
from .readout import Readout

__all__ = [
    "MACE",
    "EdgeTensorProduct",
    "ElementLinear",
    "InteractionBlock",
    "IrrepsLinear",
    "MACEModel",
    "MACEModelConfig",
    "ProductBasisBlock",
    "Readout",
    "SymmetricContraction",
    "build_mace",
]
