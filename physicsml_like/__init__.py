"""physicsml_like: train 3D atomistic machine-learning models on PyTorch Lightning."""

from . import models
from ._version import __version__
from .config import ConfigError, DataModuleConfig
from .data import GraphDataModule
from .errors import DataError
from .models import *  # noqa: F403  (every family's model and config, listed in models.__all__)
from .training import (
    PhysicsMLModel,
    available_models,
    load_from_dict,
    load_from_yaml,
    load_model,
    register_model,
)
from .variants import EnsembleModel

__all__ = [
    "ConfigError",
    "DataError",
    "DataModuleConfig",
    "EnsembleModel",
    "GraphDataModule",
    "PhysicsMLModel",
    "__version__",
    "available_models",
    "load_from_dict",
    "load_from_yaml",
    "load_model",
    "register_model",
    *models.__all__,
]
