"""EGNN passes the family contract (symmetries, periodicity, derivatives, save/load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from physicsml_like import EGNNModel

from .contract import (
    MOLECULE_TARGETS,
    PERIODIC_TARGETS,
    check_forces_are_gradients,
    check_periodic_consistency,
    check_save_load,
    check_symmetries,
    small_config,
)

ARCH = {"c_hidden": 16, "num_layers": 2, "num_rbf": 8}


@pytest.fixture(scope="module")
def molecule_model(tmp_path_factory, ethanol) -> EGNNModel:
    config = small_config(tmp_path_factory.mktemp("runs"),
                          {**MOLECULE_TARGETS, "y_graph_vector": "dipole", "y_node_scalars": ["charges"]},
                          model_dtype="float64", **ARCH)
    return EGNNModel(config).initialise(ethanol[:20])


@pytest.fixture(scope="module")
def periodic_model(tmp_path_factory, cu_frames) -> EGNNModel:
    config = small_config(tmp_path_factory.mktemp("runs"), PERIODIC_TARGETS, model_dtype="float64", **ARCH)
    return EGNNModel(config).initialise(cu_frames[:20])


def test_symmetries(molecule_model, periodic_model, ethanol, cu_frames) -> None:
    check_symmetries(molecule_model, ethanol[7])
    check_symmetries(periodic_model, cu_frames[8])


def test_periodic_consistency_and_stress(periodic_model) -> None:
    check_periodic_consistency(periodic_model)


def test_forces_are_gradients(molecule_model, periodic_model, ethanol, cu_frames) -> None:
    check_forces_are_gradients(molecule_model, ethanol[3])
    check_forces_are_gradients(periodic_model, cu_frames[3])


def test_save_load(molecule_model, ethanol, tmp_path: Path) -> None:
    check_save_load(molecule_model, ethanol[:4], tmp_path / "egnn")


def test_energy_is_continuous_at_the_cutoff(molecule_model) -> None:
    import warnings

    import ase

    cutoff = molecule_model.config.datamodule.cut_off
    energies = []
    for r in (cutoff - 1e-6, cutoff + 1e-6):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # beyond the cutoff the two atoms have no neighbour
            pair = ase.Atoms("CO", positions=[[0, 0, 0], [r, 0, 0]])
            energies.append(float(molecule_model.predict([pair])["energy"][0]))
    assert abs(energies[0] - energies[1]) < 1e-9


def test_float64_model_leaves_the_default_dtype_alone(molecule_model) -> None:
    import torch

    assert torch.get_default_dtype() == torch.float32
    assert all(p.dtype == torch.float64 for p in molecule_model.module.network.parameters())


def test_every_layer_says_what_it_is(molecule_model) -> None:
    text = repr(molecule_model.module.network)
    assert "trainable weights" in text and "hidden=16" in text and "cutoff=4.0" in text
