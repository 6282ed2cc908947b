"""scikit-learn conventions: clone, Pipeline after a transformer, GridSearchCV over a hyperparameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from physicsml_like.datasets import load_table
from physicsml_like.sklearn import PhysicsMLRegressor, SmilesToAtoms


def _regressor(root: Path, **extra) -> PhysicsMLRegressor:
    fields = {
        "c_hidden": 16, "num_layers": 2,
        "trainer": {"max_epochs": 2, "default_root_dir": str(root), "enable_progress_bar": False},
        "datamodule": {"cut_off": 4.0, "train": {"batch_size": 8}},
    }
    return PhysicsMLRegressor("egnn_model", target="energy", **{**fields, **extra})


def test_init_stores_parameters_and_clone_copies_them(tmp_path: Path) -> None:
    regressor = _regressor(tmp_path)
    params = regressor.get_params()
    assert params["model"] == "egnn_model" and params["c_hidden"] == 16 and params["num_layers"] == 2
    twin = clone(regressor)
    assert twin.get_params() == params and twin is not regressor
    regressor.set_params(c_hidden=24, target="homo")
    assert regressor.c_hidden == 24 and regressor.target == "homo" and twin.c_hidden == 16
    assert not hasattr(twin, "model_")
    with pytest.raises(NotFittedError):
        twin.predict([])


def test_fit_predict_score_on_atoms(tmp_path: Path, ethanol) -> None:
    regressor = _regressor(tmp_path, forces=True)
    assert regressor.fit(ethanol[:40]) is regressor
    assert hasattr(regressor, "model_")
    predicted = regressor.predict(ethanol[40:50])
    assert predicted.shape == (10,)
    labels = np.array([f.get_potential_energy() for f in ethanol[40:50]])
    assert np.abs(predicted - labels).mean() < 1.0
    assert np.isfinite(regressor.score(ethanol[40:50], labels))


def test_pipeline_from_smiles_and_grid_search(tmp_path: Path) -> None:
    table = load_table("small_molecules")
    table = table[table["smiles"].map(lambda s: set(s) <= set("CcOo()=#123"))].head(24)
    smiles, y = table["smiles"], table["energy"].to_numpy()
    model = _regressor(tmp_path, datamodule={"cut_off": 4.0, "train": {"batch_size": 8}, "elements": ["H", "C", "O"]})
    pipe = Pipeline([("to_3d", SmilesToAtoms()), ("model", model)])
    pipe.fit(smiles, y)
    predicted = pipe.predict(smiles)
    assert predicted.shape == (len(smiles),)
    # per-element reference energies alone explain most of the xTB energies (hundreds of eV)
    assert pipe.score(smiles, y) > 0.9
    search = GridSearchCV(pipe, {"model__c_hidden": [8, 16]}, cv=2, scoring="neg_mean_absolute_error")
    search.fit(smiles, y)
    assert search.best_params_["model__c_hidden"] in (8, 16)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and np.all(np.isfinite(scores))
