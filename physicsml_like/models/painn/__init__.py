"""PaiNN family: config, message/update/readout blocks, network, model."""

from .config import PaiNNModelConfig
from .layers import GatedEquivariantBlock, PaiNNMessage, PaiNNUpdate
from .model import PaiNNModel
from .network import PaiNN, build_painn

__all__ = [
    "GatedEquivariantBlock",
    "PaiNN",
    "PaiNNMessage",
    "PaiNNModel",
    "PaiNNModelConfig",
    "PaiNNUpdate",
    "build_painn",
]
