"""Model families by name, extensible by other packages through entry points.

The registry sits in ``training`` because what it registers are wrapper classes
(:class:`~physicsml_like.training.wrapper.PhysicsMLModel` subclasses), and the families above
it (``models/``) already import ``training`` for their wrapper; networks never need it. It imports
no family: the built-in ones are known by name from :data:`physicsml_like._families.BUILTIN_FAMILIES`
(``"egnn_model" -> "physicsml_like.models.egnn:EGNNModel"``) and imported on first use, and
importing a family runs its ``@register_model``.

A package adds a family by declaring, in its ``pyproject.toml``::

    [project.entry-points."physicsml_like.models"]
    my_model = "my_package.models:MyModel"

where ``MyModel`` subclasses :class:`~physicsml_like.training.wrapper.PhysicsMLModel`. Its name is
listed by :func:`available_models` without importing it; the class loads when it is asked for.
A built-in family keeps its name: an entry point of the same name is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._families import BUILTIN_FAMILIES
from .._lazy import resolve
from ..config.base import ConfigError

if TYPE_CHECKING:
    from .wrapper import PhysicsMLModel

__all__ = ["available_models", "get_model_class", "load_from_dict", "load_from_yaml", "register_model"]

ENTRY_POINT_GROUP = "physicsml_like.models"
_REGISTRY: dict[str, type[PhysicsMLModel]] = {}
_ENTRY_POINTS: dict[str, EntryPoint] = {}
_entry_points_loaded = False

W = TypeVar("W", bound="type[PhysicsMLModel]")


def register_model(name: str) -> Callable[[W], W]:
    """Class decorator: make a wrapper class reachable by ``name``."""

    def decorate(cls: W) -> W:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"a model named {name!r} is already registered ({existing.__qualname__})")
        builtin = BUILTIN_FAMILIES.get(name)
        if existing is None and builtin is not None and not _defines(cls, builtin):
            raise ValueError(f"{name!r} is the name of a built-in family ({builtin})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _defines(cls: type, spec: str) -> bool:
    """Whether ``cls`` is the class ``spec`` ("package:Class") names, judged without importing:
    the family package or one of its modules defines a class of that name."""
    module, _, qualname = spec.partition(":")
    return cls.__qualname__ == qualname and (cls.__module__ == module or cls.__module__.startswith(module + "."))


def _entry_points() -> dict[str, EntryPoint]:
    """The group's entry points by name (read once; nothing is imported)."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        _ENTRY_POINTS.clear()
        _ENTRY_POINTS.update({entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)})
    return _ENTRY_POINTS


def _load(name: str) -> type[PhysicsMLModel] | None:
    """Import the family registered as ``name`` (built-in first, then entry points)."""
    if name in BUILTIN_FAMILIES:
        cls = resolve(BUILTIN_FAMILIES[name])
    elif name in _entry_points():
        cls = _entry_points()[name].load()
    else:
        return None
    if _REGISTRY.get(name) is not cls:  # an entry point's class need not be decorated
        register_model(name)(cls)
    return cls


def available_models() -> list[str]:
    """Names of every family: built-in, registered, and from entry points (none is imported)."""
    return sorted(set(BUILTIN_FAMILIES) | set(_REGISTRY) | set(_entry_points()))


def get_model_class(name: str) -> type[PhysicsMLModel]:
    """The wrapper class registered under ``name``."""
    cls = _REGISTRY.get(name) or _load(name)
    if cls is None:
        import difflib

        known = available_models()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown model name {name!r} (available: {known}){hint}")
    return cls


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
