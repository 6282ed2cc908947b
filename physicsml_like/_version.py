"""The package version, in a leaf module so that any layer can record it without importing the
package root (which would import every layer back)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("physicsml_like")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
