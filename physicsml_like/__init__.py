"""physicsml_like: train 3D atomistic machine-learning models on PyTorch Lightning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("physicsml_like")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

from .config import ConfigError, DataModuleConfig  # noqa: E402
from .data import GraphDataModule  # noqa: E402
from .errors import DataError  # noqa: E402
from .models import EGNNModel, EGNNModelConfig, MACEModel, MACEModelConfig  # noqa: E402
from .training import (  # noqa: E402
    PhysicsMLModel,
    available_models,
    load_from_dict,
    load_from_yaml,
    load_model,
    register_model,
)

__all__ = [
    "ConfigError",
    "DataError",
    "DataModuleConfig",
    "EGNNModel",
    "EGNNModelConfig",
    "GraphDataModule",
    "MACEModel",
    "MACEModelConfig",
    "PhysicsMLModel",
    "__version__",
    "available_models",
    "load_from_dict",
    "load_from_yaml",
    "load_model",
    "register_model",
]
