"""Extension points of the wrapper that the layers above it fill: engines and saved formats.

``training`` must not import the layers above it (``variants``, ``integrations``), yet
``model.to_ase_calculator()`` returns an integration's object and ``load_model`` recognises an
ensemble's folder. Both go through a small table here: an entry names its provider as a
``"module:attribute"`` string, resolved with importlib the first time it is used (as the family
registry does for the built-in families), or as the object itself when a package registers one
at run time. So the lower layer knows a provider by name only, importing ``training`` loads no
integration, and a package can add an engine (``register_engine("my_md", MyCalculator)``) without
editing this file.

- **Engines**: name -> factory called as ``factory(model, **options)``; ``"ase"`` builds the ASE
  calculator of one model, ``"ase_ensemble"`` that of an ensemble; ``"export"`` writes a model
  or an ensemble as a TorchScript or metatomic file (``factory(model, path, format, **options)``);
  ``"torch_sim"`` and ``"torch_sim_ensemble"`` give their torch-sim models.
- **Saved formats**: a marker file in a saved folder -> loader called as ``loader(path)``; a
  folder with ``ensemble.json`` is an ensemble. A folder without any marker is one model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._lazy import resolve

__all__ = ["engine", "register_engine", "register_saved_format", "saved_format_loader"]

Provider = str | Callable[..., Any]

_ENGINES: dict[str, Provider] = {
    "aoti": "physicsml_like.integrations.aoti:export_aoti",
    "ase": "physicsml_like.integrations.ase:PhysicsMLCalculator",
    "ase_ensemble": "physicsml_like.integrations.ase:EnsembleCalculator",
    "export": "physicsml_like.integrations.export:export_model",
    "metatomic": "physicsml_like.integrations.metatomic:export_metatomic",
    "torch_sim": "physicsml_like.integrations.torch_sim:TorchSimModel",
    "torch_sim_ensemble": "physicsml_like.integrations.torch_sim:TorchSimEnsemble",
}
_SAVED_FORMATS: dict[str, Provider] = {
    "ensemble.json": "physicsml_like.variants.ensemble:EnsembleModel.load",
}


def _provided(table: dict[str, Provider], key: str) -> Callable[..., Any]:
    provider = table[key]
    if isinstance(provider, str):
        provider = table[key] = resolve(provider)
    return provider


def register_engine(name: str, factory: Provider) -> None:
    """Make ``factory`` (or its ``"module:attribute"`` name) the engine called ``name``."""
    _ENGINES[name] = factory


def engine(name: str) -> Callable[..., Any]:
    """The factory of the engine ``name``, imported on first use."""
    if name not in _ENGINES:
        raise KeyError(f"no engine named {name!r} (available: {sorted(_ENGINES)})")
    return _provided(_ENGINES, name)


def register_saved_format(marker: str, loader: Provider) -> None:
    """Folders holding a file named ``marker`` are loaded by ``loader(path)``."""
    _SAVED_FORMATS[marker] = loader


def saved_format_loader(path: Path) -> Callable[[Path], Any] | None:
    """The loader of the saved folder ``path`` when it holds a registered marker file, else
    ``None`` (a single model)."""
    for marker in _SAVED_FORMATS:
        if (path / marker).exists():
            return _provided(_SAVED_FORMATS, marker)
    return None
