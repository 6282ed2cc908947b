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

physicsml's names resolve too, to the equivalent model of this package (tables in
:mod:`physicsml_like._families`): ``tensor_net_model`` is ``tensornet_model``;
``mean_var_<family>_model``, ``ssf_<family>_model`` and ``adapter_<family>_model`` are the
family with ``uncertainty="mean_var"`` or ``transfer_learning.adapter`` ``"ssf"`` /
``"bottleneck"``; ``ensemble_ani_model`` is an :class:`~physicsml_like.variants.EnsembleModel`
of ANI members (``n_models`` of them). A model made so is an ordinary model of its family: it
saves under the family's name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._families import (
    BUILTIN_FAMILIES,
    ENSEMBLE_FACTORY,
    ENSEMBLE_NAMES,
    FAMILY_ALIASES,
    VARIANT_PREFIXES,
)
from .._lazy import resolve
from ..config.base import ConfigError, StrictConfig, deep_merge

if TYPE_CHECKING:
    from .wrapper import PhysicsMLModel

__all__ = ["available_models", "get_model_class", "load_from_dict", "load_from_yaml", "physicsml_names", "register_model"]

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


def physicsml_names() -> list[str]:
    """physicsml's names that resolve here (aliases, variants of every family, ensembles)."""
    families = available_models()
    variants = [f"{prefix}{family}" for prefix in VARIANT_PREFIXES for family in families]
    return sorted({*FAMILY_ALIASES, *variants, *ENSEMBLE_NAMES})


def _physicsml_variant(name: str) -> tuple[str, str | None] | None:
    """(family, variant) of one of physicsml's names, ``None`` for any other name."""
    if name in FAMILY_ALIASES:
        return FAMILY_ALIASES[name], None
    for prefix, variant in VARIANT_PREFIXES.items():
        rest = FAMILY_ALIASES.get(name[len(prefix):], name[len(prefix):])
        if name.startswith(prefix) and rest in available_models():
            return rest, variant
    return None


def get_model_class(name: str) -> type[PhysicsMLModel]:
    """The wrapper class registered under ``name`` (physicsml's names included, see above)."""
    cls = _REGISTRY.get(name) or _load(name)
    if cls is not None:
        return cls
    variant = _physicsml_variant(name)
    if variant is not None:
        family = get_model_class(variant[0])
        return family if variant[1] is None else _variant_class(family, variant[1], name)
    if name in ENSEMBLE_NAMES:
        raise ConfigError(f"{name!r} is an ensemble of {ENSEMBLE_NAMES[name]} members: make it with load_from_dict "
                          "or physicsml_like.variants.EnsembleModel")
    import difflib

    known = available_models()
    close = difflib.get_close_matches(name, known + physicsml_names(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown model name {name!r} (available: {known}){hint}")


_VARIANTS: dict[str, type[PhysicsMLModel]] = {}


def _variant_class(family: type[PhysicsMLModel], variant: str, name: str) -> type[PhysicsMLModel]:
    """The family with physicsml's variant ``name`` applied to every config it is given; it keeps
    the family's registry name, so what it saves loads as the family."""
    if name not in _VARIANTS:

        def __init__(self: PhysicsMLModel, config: Any = None, **fields: Any) -> None:
            data = config.model_dump() if isinstance(config, StrictConfig) else dict(config or {})
            family.__init__(self, with_variant(deep_merge(data, fields), variant, name))

        doc = f"physicsml's ``{name}``: {family.__name__} with the {variant!r} variant (see training.registry)."
        _VARIANTS[name] = type(f"{variant.title().replace('_', '')}{family.__name__}", (family,),
                               {"__init__": __init__, "__doc__": doc, "__module__": family.__module__})
    return _VARIANTS[name]


def with_variant(config: dict[str, Any], variant: str, name: str) -> dict[str, Any]:
    """``config`` with the fields that physicsml's variant model ``name`` implies."""
    out = dict(config)
    if variant == "mean_var":
        if out.get("uncertainty", "mean_var") != "mean_var":
            raise ConfigError(f"{name}: uncertainty is 'mean_var' for this model, got {out['uncertainty']!r}")
        out["uncertainty"] = "mean_var"
        return out
    transfer = out.get("transfer_learning")
    if not isinstance(transfer, dict):
        raise ConfigError(
            f"{name} fine-tunes a saved model with {variant} adapters: set transfer_learning.pre_trained_model_path "
            "(or transfer_learning.pretrained) to its folder; to train from scratch, use the family's own name"
        )
    if transfer.get("adapter", variant) != variant:
        raise ConfigError(f"{name}: transfer_learning.adapter is {variant!r} for this model, got {transfer['adapter']!r}")
    transfer = {**transfer, "adapter": variant}
    if "ratio_adapter_down" in out:  # physicsml's bottleneck width, as a fraction of the layer's
        transfer.setdefault("bottleneck_ratio", out.pop("ratio_adapter_down"))
    if "initial_s" in out:
        import warnings

        out.pop("initial_s")
        warnings.warn(f"{name}: initial_s is not used; the adapters here start at exactly zero, so fine-tuning "
                      "starts from the pretrained model's predictions", UserWarning, stacklevel=3)
    out["transfer_learning"] = transfer
    return out


def load_from_dict(spec: dict[str, Any]) -> PhysicsMLModel:
    """A model from ``{"name": "egnn_model", "config": {...}}`` (physicsml's names too; an
    ensemble name gives an :class:`~physicsml_like.variants.EnsembleModel`)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError("a model dict needs a 'name' (e.g. 'egnn_model') and optionally a 'config'")
    unknown = set(spec) - {"name", "config"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} in the model dict (expected 'name' and 'config')")
    if spec["name"] in ENSEMBLE_NAMES:
        return resolve(ENSEMBLE_FACTORY)(ENSEMBLE_NAMES[spec["name"]], dict(spec.get("config") or {}))
    return get_model_class(spec["name"])(spec.get("config") or {})


def load_from_yaml(path: str | Path) -> PhysicsMLModel:
    """A model from a YAML file holding ``name`` and ``config``."""
    import yaml

    with open(path) as handle:
        spec = yaml.safe_load(handle)
    return load_from_dict({k: spec[k] for k in ("name", "config") if k in spec})
