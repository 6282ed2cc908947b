"""scikit-learn adapters: any family as a regressor, and SMILES to 3D structures as a transformer.

They follow scikit-learn's conventions, so ``clone``, ``Pipeline`` and ``GridSearchCV`` work:
``__init__`` only stores its arguments, ``fit`` returns ``self``, fitted state ends in ``_``,
and ``get_params`` / ``set_params`` cover the signature's parameters plus the family's
hyperparameters passed as keywords.

Examples
--------
>>> from sklearn.pipeline import Pipeline
>>> pipe = Pipeline([("to_3d", SmilesToAtoms()),
...                  ("model", PhysicsMLRegressor("egnn_model", target="energy", c_hidden=32))])
>>> pipe.get_params()["model__c_hidden"]
32
"""

from __future__ import annotations

import difflib
import shutil
import tempfile
from typing import Any, Self

import ase
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin

from .config.base import ConfigError
from .config.datamodule import ConformerConfig
from .data import molecules
from .training.registry import available_models, get_model_class

__all__ = ["PhysicsMLRegressor", "SmilesToAtoms"]

_PER_ATOM_RESULTS = {"forces", "charges", "magmoms", "energies", "stresses"}
_OWN_PARAMETERS = ("model", "target", "forces", "run_dir")


def _check_hyperparameter_names(model: Any, names: list[str]) -> None:
    """Reject keywords that are no field of the family's config, with a "did you mean".

    Only the *names* are checked, never the values (scikit-learn's rule: values are validated
    at ``fit``). An unknown family is left to ``fit`` too, which names it.
    """
    if not isinstance(model, str) or model not in available_models():
        return
    config_class = get_model_class(model).config_class
    valid = set(config_class.model_fields) | set(config_class.all_renamed_fields())
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, sorted(valid | set(_OWN_PARAMETERS)), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"PhysicsMLRegressor: {name!r} is not a parameter of {model!r}{hint}")


def _labels_off_calculator(atoms: ase.Atoms) -> ase.Atoms:
    """A copy whose calculator results moved to ``info`` / ``arrays``, so a given ``y`` wins
    (labels on a calculator are looked up before ``info``)."""
    copy = atoms.copy()
    for key, value in (getattr(atoms.calc, "results", None) or {}).items():
        if key in _PER_ATOM_RESULTS:
            copy.arrays[key] = np.asarray(value)
        else:
            copy.info[key] = value
    return copy


def _check_structures(X: Any) -> None:
    """A numeric matrix is no set of structures: say what ``X`` may be instead of failing deep inside."""
    if isinstance(X, np.ndarray) and X.dtype.kind in "biufc":
        raise ValueError(
            f"X is a numeric array of shape {X.shape}; PhysicsMLRegressor takes structures: a list "
            "of ase.Atoms, a data file path, or a DataFrame of SMILES or coordinates"
        )


class SmilesToAtoms(TransformerMixin, BaseEstimator):
    """SMILES strings (a list, array or Series) -> ``ase.Atoms`` with seeded RDKit 3D conformers.

    Parameters
    ----------
    seed: RDKit embedding seed (the same SMILES always gives the same structure).
    optimise: ``"mmff"``, ``"uff"`` or ``None`` force-field relaxation after embedding.
    """

    def __init__(self, seed: int = 42, optimise: str | None = "mmff") -> None:
        self.seed = seed
        self.optimise = optimise

    def fit(self, X: Any, y: Any = None) -> Self:
        return self

    def transform(self, X: Any) -> list[ase.Atoms]:
        smiles = X.tolist() if hasattr(X, "tolist") else list(X)
        if smiles and isinstance(smiles[0], list):  # a 2-D column, as ColumnTransformer gives
            smiles = [row[0] for row in smiles]
        config = ConformerConfig(seed=self.seed, optimise=self.optimise)  # type: ignore[arg-type]
        out = []
        for index, text in enumerate(smiles):
            mol = molecules.molecule_from_smiles(text, index=index, source="SMILES")
            mol = molecules.embed_molecule(mol, config, index=index, source="SMILES")
            atoms = ase.Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions())
            atoms.info["smiles"] = text
            out.append(atoms)
        return out


class PhysicsMLRegressor(RegressorMixin, BaseEstimator):
    """A model family as a scikit-learn regressor of one structure-level target.

    Parameters
    ----------
    model: registered family name (``"egnn_model"``, ``"mace_model"``, ...).
    target: the label to learn and predict (a graph scalar, e.g. ``"energy"`` or ``"homo"``).
    forces: also train on forces (labels named ``forces`` on the structures) with the energy as
        target; predictions stay the target values.
    run_dir: folder for the training runs (checkpoints, ``metrics.csv``). ``None``: a temporary
        folder removed after ``fit`` (the trained weights stay in memory), unless
        ``trainer={"default_root_dir": ...}`` names one.
    **hyperparameters: any field of the family's config (``c_hidden=64``,
        ``trainer={"max_epochs": 50}``, ``datamodule={"cut_off": 4.5}``, ...). A name that is no
        field of the family raises at once (here, in ``set_params`` and so in ``clone``).

    Notes
    -----
    ``X`` is a list of ``ase.Atoms``, a path, or a DataFrame (SMILES or coordinates columns); ``y``
    is optional when the labels travel with ``X``.
    """

    def __init__(
        self,
        model: str = "egnn_model",
        target: str = "energy",
        forces: bool = False,
        run_dir: str | None = None,
        **hyperparameters: Any,
    ) -> None:
        # the signature cannot list the family's fields, so their names are checked here
        # (clone rebuilds through __init__); values are stored untouched
        _check_hyperparameter_names(model, list(hyperparameters))
        self.model = model
        self.target = target
        self.forces = forces
        self.run_dir = run_dir
        self._hyperparameters = list(hyperparameters)
        for key, value in hyperparameters.items():
            setattr(self, key, value)

    # scikit-learn reads parameters from the signature; the family's hyperparameters come as
    # keywords, so they are listed here as well (clone and GridSearchCV then see them)
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update({key: getattr(self, key) for key in self._hyperparameters})
        return params

    def set_params(self, **params: Any) -> Self:
        new = [key for key in params if key not in _OWN_PARAMETERS]
        _check_hyperparameter_names(params.get("model", self.model), [*self._hyperparameters, *new])
        for key, value in params.items():
            if key not in _OWN_PARAMETERS and key not in self._hyperparameters:
                self._hyperparameters.append(key)
            setattr(self, key, value)
        return self

    def _config(self) -> dict[str, Any]:
        config = {key: getattr(self, key) for key in self._hyperparameters}
        datamodule = dict(config.pop("datamodule", None) or {})
        datamodule.setdefault("y_graph_scalars", [self.target])
        if self.forces:
            datamodule.setdefault("y_node_vector", "forces")
            config.setdefault("compute_forces", True)
        config["datamodule"] = datamodule
        return config

    def _with_labels(self, X: Any, y: Any) -> Any:
        if y is None:
            return X
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if isinstance(X, pd.DataFrame):
            frame = X.copy()
            frame[self.target] = y
            return frame
        frames = list(X)
        if len(frames) != len(y):
            raise ValueError(f"X has {len(frames)} structures but y has {len(y)} values")
        labelled = []
        for atoms, value in zip(frames, y, strict=True):
            copy = _labels_off_calculator(atoms)
            copy.info[self.target] = float(value)
            labelled.append(copy)
        return labelled

    def fit(self, X: Any, y: Any = None, validation_data: Any = None) -> Self:
        """Train a new model on ``X`` (labels from ``y`` or carried by ``X``)."""
        _check_structures(X)
        config = self._config()
        trainer = dict(config.get("trainer") or {})
        temporary = None
        if self.run_dir is not None:
            trainer["default_root_dir"] = str(self.run_dir)
        elif "default_root_dir" not in trainer:
            temporary = tempfile.mkdtemp(prefix="physicsml_like_fit_")
            trainer["default_root_dir"] = temporary
        config["trainer"] = trainer
        try:
            model = get_model_class(self.model)(config)
            model.train(self._with_labels(X, y), validation_data)
        finally:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
        if temporary is not None:
            model.run_dir = None  # the run folder is gone; the weights live in model.module
        self.model_ = model
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The target for every structure of ``X``, ``[n_samples]``."""
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("PhysicsMLRegressor is not fitted yet: call fit first")
        _check_structures(X)
        return np.asarray(self.model_.predict(X)[self.target])
