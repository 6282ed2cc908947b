"""The shared training layer: LightningModule, wrapper, techniques, registry."""

from ..nn.builder import default_dtype, model_builder
from .conflict_free import ConFIGLightningModule, conflict_free_direction
from .ema import EMALightningModule
from .module import AtomisticLightningModule
from .registry import (
    available_models,
    get_model_class,
    load_from_dict,
    load_from_yaml,
    register_model,
)
from .techniques import TECHNIQUES, EMAConFIGLightningModule
from .wrapper import PhysicsMLModel, load_model

__all__ = [
    "TECHNIQUES",
    "AtomisticLightningModule",
    "ConFIGLightningModule",
    "EMAConFIGLightningModule",
    "EMALightningModule",
    "PhysicsMLModel",
    "available_models",
    "conflict_free_direction",
    "default_dtype",
    "get_model_class",
    "load_from_dict",
    "load_from_yaml",
    "load_model",
    "model_builder",
    "register_model",
]
