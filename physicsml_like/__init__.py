"""physicsml_like: train 3D atomistic machine-learning models on PyTorch Lightning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("physicsml_like")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
