"""Deep ensembles: N members of any family, differing in seed, trained in one call.

The ensemble's prediction is the members' mean, and its spread (``<name>_std``, the standard
deviation across members) measures how much the members disagree, which grows away from the
training data (Lakshminarayanan et al. 2017, arXiv:1612.01474).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any, Self

import numpy as np

from .._version import __version__
from ..training.extensions import engine
from ..training.wrapper import PhysicsMLModel, add_uncertainty, load_model

__all__ = ["EnsembleModel", "ensemble_from_config"]

_MANIFEST = "ensemble.json"


class EnsembleModel:
    """An ensemble of ``n_members`` copies of ``model`` with seeds ``seed, seed + 1, ...``.

    Parameters
    ----------
    model: an (untrained) model of any family; its config is copied for every member.
    n_members: how many members.
    members: alternatively, the members themselves (e.g. after loading).

    Examples
    --------
    >>> from physicsml_like import EGNNModel
    >>> ensemble = EnsembleModel(EGNNModel(c_hidden=16), n_members=3)
    >>> [m.config.seed for m in ensemble.members]
    [0, 1, 2]
    """

    def __init__(self, model: PhysicsMLModel | None = None, n_members: int = 5, *, members: list[PhysicsMLModel] | None = None) -> None:
        if members is None:
            if model is None:
                raise ValueError("give a model to copy, or the members")
            if n_members < 2:
                raise ValueError(f"an ensemble needs at least 2 members, got {n_members}")
            seed = model.config.seed
            members = [type(model)(model.config.updated({"seed": seed + k})) for k in range(n_members)]
        if len({type(m) for m in members}) != 1:
            raise ValueError("all members must be of one family")
        self.members = members

    def __repr__(self) -> str:
        return f"EnsembleModel({len(self.members)} x {type(self.members[0]).__name__})"

    def __len__(self) -> int:
        return len(self.members)

    def train(self, train_data: Any, validation_data: Any = None, **overrides: Any) -> Self:
        """Train every member on the same data (each with its own seed); returns ``self``."""
        for member in self.members:
            member.train(train_data, validation_data, **overrides)
        return self

    def predict(
        self, data: Any, *, return_std: bool = True, confidence: float | None = None, as_dataframe: bool = False
    ) -> dict[str, Any] | Any:
        """The members' mean for every target, with ``<name>_std`` across members (and Gaussian
        ``<name>_lower``/``_upper`` at ``confidence``)."""
        outputs = [member.predict(data) for member in self.members]
        mean: dict[str, Any] = {}
        stds: dict[str, Any] = {}
        for name, first in outputs[0].items():
            if isinstance(first, list):
                stacked = [np.stack([out[name][i] for out in outputs]) for i in range(len(first))]
                mean[name] = [s.mean(axis=0) for s in stacked]
                stds[name] = [s.std(axis=0, ddof=1) for s in stacked]
            else:
                stacked_array = np.stack([out[name] for out in outputs])
                mean[name] = stacked_array.mean(axis=0)
                stds[name] = stacked_array.std(axis=0, ddof=1)
        if return_std or confidence is not None:
            add_uncertainty(mean, stds, confidence)
        if as_dataframe:
            from ..training.wrapper import _to_dataframe

            return _to_dataframe(mean)
        return mean

    def save(self, path: str | Path) -> Path:
        """A folder with ``ensemble.json`` and one saved model per member (written atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            for k, member in enumerate(self.members):
                member.save(tmp / f"member_{k}")
            (tmp / _MANIFEST).write_text(json.dumps({"members": len(self.members), "family": self.members[0].name, "version": __version__}, indent=1))
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> EnsembleModel:
        path = Path(path)
        manifest = json.loads((path / _MANIFEST).read_text())
        return cls(members=[load_model(path / f"member_{k}") for k in range(manifest["members"])])

    def to_ase_calculator(self, **kwargs: Any) -> Any:
        """An ASE calculator averaging the members; the spread is in ``calc.results`` as
        ``energy_std`` and ``forces_std``."""
        return engine("ase_ensemble")(self, **kwargs)

    def export(self, path: str | Path, format: str = "torchscript", *, dtype: str | None = None, device: str = "cpu") -> Path:
        """One compiled file of all members: the mean energy, forces and stress, and the spread
        (``energy_std``, ``forces_std``; ``energy_uncertainty`` in metatomic). See ``docs/export.md``."""
        return engine("export")(self, path, format, dtype=dtype, device=device)

    def to_torch_sim(self, **kwargs: Any) -> Any:
        """A torch-sim model giving the members' mean energy, forces and stress; the spread is
        returned as ``energy_std`` and ``forces_std``."""
        return engine("torch_sim_ensemble")(self, **kwargs)


def ensemble_from_config(family: str, config: dict[str, Any]) -> EnsembleModel:
    """An ensemble of ``config["n_models"]`` (default 4, as physicsml's ``ensemble_ani_model``)
    members of ``family``, each built from the rest of ``config`` with seeds ``seed, seed + 1, ...``."""
    from ..training.registry import get_model_class

    config = dict(config)
    n_models = config.pop("n_models", 4)
    return EnsembleModel(get_model_class(family)(config), n_members=n_models)
