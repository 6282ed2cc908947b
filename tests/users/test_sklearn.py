"""scikit-learn conventions: clone, Pipeline after a transformer, GridSearchCV over a hyperparameter."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

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


# ------------------------------------------------------------------ misspelt parameters
def test_a_misspelt_hyperparameter_is_rejected_at_once_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'c_hiden' is not a parameter of 'egnn_model'; did you mean 'c_hidden'"):
        PhysicsMLRegressor("egnn_model", c_hiden=16)
    regressor = _regressor(tmp_path)
    with pytest.raises(ValueError, match=r"did you mean 'num_layers'"):
        regressor.set_params(num_layer=3)
    assert not hasattr(regressor, "num_layer")  # nothing half-set
    # a hyperparameter of one family is misspelt for another; clone rebuilds and says so
    regressor.model = "mace_model"
    with pytest.raises(ValueError, match=r"'c_hidden' is not a parameter of 'mace_model'"):
        clone(regressor)
    with pytest.raises(ValueError, match=r"'c_hidden' is not a parameter of 'mace_model'"):
        _regressor(tmp_path).set_params(model="mace_model")


# ------------------------------------------------------------------ nothing left behind
def _tiny(**extra) -> PhysicsMLRegressor:
    return PhysicsMLRegressor("egnn_model", target="energy", c_hidden=8, num_layers=1,
                              trainer={"max_epochs": 1, "enable_progress_bar": False},
                              datamodule={"cut_off": 4.0, "train": {"batch_size": 8}}, **extra)


def test_fit_leaves_no_run_folder_unless_asked(ethanol, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, scratch = tmp_path / "work", tmp_path / "scratch"
    work.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    regressor = _tiny()
    params = joblib.hash(regressor.get_params())
    assert regressor.fit(ethanol[:8]) is regressor
    assert joblib.hash(regressor.get_params()) == params  # fit changes no parameter
    assert list(work.iterdir()) == [] and list(scratch.iterdir()) == []
    assert regressor.predict(ethanol[8:10]).shape == (2,)  # the weights stayed in memory
    asked = _tiny(run_dir=str(tmp_path / "kept")).fit(ethanol[:8])
    assert (asked.model_.run_dir / "metrics.csv").exists()
    assert list(work.iterdir()) == []


def test_a_numeric_matrix_is_refused_with_what_x_may_be() -> None:
    with pytest.raises(ValueError, match="takes structures: a list of ase.Atoms"):
        _tiny().fit(np.zeros((4, 3)), np.zeros(4))


# ------------------------------------------------------------------ scikit-learn's own checks
_STRUCTURES_ONLY = (
    "fits on a numeric 2-D array, and X here is structures (ase.Atoms, SMILES, coordinates); "
    "the same property is tested on structures in this file"
)
_NOT_FOR_STRUCTURES = {
    name: _STRUCTURES_ONLY
    for name in (
        "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self", "check_readonly_memmap_input",
        "check_n_features_in_after_fitting", "check_positive_only_tag_during_fit",
    )
}


def _expected_failures(estimator: PhysicsMLRegressor) -> dict[str, str]:
    failures = dict(_NOT_FOR_STRUCTURES)
    if estimator._hyperparameters:
        failures["check_no_attributes_set_in_init"] = (
            "the family's hyperparameters are keywords, stored as attributes and listed by "
            "get_params (clone and GridSearchCV see them, tested above)"
        )
    return failures


@parametrize_with_checks([PhysicsMLRegressor(), _tiny()], legacy=False, expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    check(estimator)
