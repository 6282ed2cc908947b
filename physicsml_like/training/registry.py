"""Model families by name, extensible by other packages through entry points.

A package adds a family by declaring, in its ``pyproject.toml``::

    [project.entry-points."physicsml_like.models"]
    my_model = "my_package.models:MyModel"

where ``MyModel`` subclasses :class:`~physicsml_like.training.wrapper.PhysicsMLModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..config.base import ConfigError

if TYPE_CHECKING:
    from .wrapper import PhysicsMLModel

__all__ = ["available_models", "get_model_class", "load_from_dict", "load_from_yaml", "register_model"]

ENTRY_POINT_GROUP = "physicsml_like.models"
_REGISTRY: dict[str, type[PhysicsMLModel]] = {}
_entry_points_loaded = False

W = TypeVar("W", bound="type[PhysicsMLModel]")


def register_model(name: str) -> Callable[[W], W]:
    """Class decorator: make a wrapper class reachable by ``name``."""

    def decorate(cls: W) -> W:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"a model named {name!r} is already registered ({existing.__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtin_and_entry_points() -> None:
    global _entry_points_loaded
    from .. import models  # noqa: F401  (registers the built-in families)

    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _REGISTRY:
            continue
        cls = entry.load()
        register_model(entry.name)(cls)


def available_models() -> list[str]:
    """Names of every registered family (built-in and from entry points)."""
    _load_builtin_and_entry_points()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[PhysicsMLModel]:
    """The wrapper class registered under ``name``."""
    _load_builtin_and_entry_points()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown model name {name!r} (available: {sorted(_REGISTRY)}){hint}")
    return _REGISTRY[name]


def load_from_dict(spec: dict[str, Any]) -> PhysicsMLModel:
    """A model from ``{"name": "egnn_model", "config": {...}}``."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError("a model dict needs a 'name' (e.g. 'egnn_model') and optionally a 'config'")
    unknown = set(spec) - {"name", "config"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} in the model dict (expected 'name' and 'config')")
    return get_model_class(spec["name"])(spec.get("config") or {})


def load_from_yaml(path: str | Path) -> PhysicsMLModel:
    """A model from a YAML file holding ``name`` and ``config``."""
    import yaml

    with open(path) as handle:
        spec = yaml.safe_load(handle)
    return load_from_dict({k: spec[k] for k in ("name", "config") if k in spec})
