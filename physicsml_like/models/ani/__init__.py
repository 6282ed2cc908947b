"""ANI family: AEV presets, config, network, model."""

from .aev import AtomicEnvironmentVector
from .config import AEVConfig, ANIModelConfig
from .model import ANIModel
from .network import ANI, ElementNetworks, build_ani
from .presets import PRESETS, ANIPreset

__all__ = [
    "ANI",
    "PRESETS",
    "AEVConfig",
    "ANIModel",
    "ANIModelConfig",
    "ANIPreset",
    "AtomicEnvironmentVector",
    "ElementNetworks",
    "build_ani",
]
