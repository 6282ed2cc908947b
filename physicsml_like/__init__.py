"""physicsml_like: train 3D atomistic machine-learning models on PyTorch Lightning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("physicsml_like")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

from . import models  # noqa: E402
from .config import ConfigError, DataModuleConfig  # noqa: E402
from .data import GraphDataModule  # noqa: E402
from .errors import DataError  # noqa: E402
from .models import *  # noqa: E402, F403  (every family's model and config, listed in models.__all__)
from .training import (  # noqa: E402
    PhysicsMLModel,
    available_models,
    load_from_dict,
    load_from_yaml,
    load_model,
    register_model,
)
from .variants import EnsembleModel  # noqa: E402

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
