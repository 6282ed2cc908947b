"""The shared training layer: LightningModule, wrapper, techniques, registry."""

from .builder import default_dtype, model_builder
from .ema import EMALightningModule
from .module import AtomisticLightningModule
from .registry import available_models, get_model_class, load_from_dict, load_from_yaml, register_model
from .wrapper import PhysicsMLModel, load_model

__all__ = [
    "AtomisticLightningModule",
    "EMALightningModule",
    "PhysicsMLModel",
    "available_models",
    "default_dtype",
    "get_model_class",
    "load_from_dict",
    "load_from_yaml",
    "load_model",
    "model_builder",
    "register_model",
]
