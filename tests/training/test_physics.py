"""Forces and stress are exact derivatives of the energy; EGNN is E(3)-equivariant and smooth."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from ase.build import bulk
from scipy.spatial.transform import Rotation

from physicsml_like import EGNNModel

from .helpers import CU_TARGETS, tiny_egnn


@pytest.fixture(scope="module")
def copper_model(tmp_path_factory: pytest.TempPathFactory, cu_frames: list[ase.Atoms]) -> EGNNModel:
    root = tmp_path_factory.mktemp("runs")
    config = tiny_egnn(root, datamodule=CU_TARGETS, compute_stress=True, model_dtype="float64")
    return EGNNModel(config).initialise(cu_frames[:20])


@pytest.fixture(scope="module")
def molecule_model(tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms]) -> EGNNModel:
    root = tmp_path_factory.mktemp("runs")
    config = tiny_egnn(
        root,
        datamodule={"y_graph_vector": "dipole", "y_node_scalars": ["charges"]},
        model_dtype="float64",
    )
    return EGNNModel(config).initialise(ethanol[:20])


def _energy(model: EGNNModel, atoms: ase.Atoms) -> float:
    return float(model.predict([atoms])["energy"][0])


def test_forces_are_minus_the_energy_gradient(copper_model: EGNNModel, cu_frames: list[ase.Atoms]) -> None:
    atoms = cu_frames[3].copy()
    forces = copper_model.predict([atoms])["forces"][0]
    h = 1e-5
    for atom, axis in [(0, 0), (5, 1), (17, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(_energy(copper_model, plus) - _energy(copper_model, minus)) / (2 * h)
        assert numeric == pytest.approx(forces[atom, axis], abs=1e-7)


def test_stress_is_the_strain_derivative_over_volume(copper_model: EGNNModel, cu_frames: list[ase.Atoms]) -> None:
    atoms = cu_frames[5].copy()
    stress = copper_model.predict([atoms])["stress"][0]
    assert stress.shape == (3, 3)
    np.testing.assert_allclose(stress, stress.T, atol=1e-10)
    h = 1e-5
    for a, b in [(0, 0), (1, 2), (0, 1)]:
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = h / (2 if a != b else 1)
        values = []
        for sign in (1, -1):
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + sign * strain), scale_atoms=True)
            values.append(_energy(copper_model, strained))
        derivative = (values[0] - values[1]) / (2 * h)
        assert derivative / atoms.get_volume() == pytest.approx(stress[a, b], abs=1e-7)


def test_energy_invariant_and_forces_equivariant(copper_model: EGNNModel, molecule_model: EGNNModel, cu_frames, ethanol) -> None:
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    for model, atoms in ((molecule_model, ethanol[7]), (copper_model, cu_frames[8])):
        moved = atoms.copy()
        moved.positions = atoms.positions @ rotation.T + np.array([1.3, -0.4, 7.0])
        moved.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
        permutation = np.random.default_rng(0).permutation(len(atoms))
        moved = moved[permutation]
        ref, new = model.predict([atoms]), model.predict([moved])
        assert new["energy"][0] == pytest.approx(ref["energy"][0], abs=1e-9 * max(1.0, abs(ref["energy"][0])))
        np.testing.assert_allclose(new["forces"][0], (ref["forces"][0] @ rotation.T)[permutation], atol=1e-9)
    ref, new = molecule_model.predict([ethanol[2]]), None
    turned = ethanol[2].copy()
    turned.positions = turned.positions @ rotation.T
    new = molecule_model.predict([turned])
    np.testing.assert_allclose(new["dipole"][0], ref["dipole"][0] @ rotation.T, atol=1e-9)
    np.testing.assert_allclose(new["charges"][0], ref["charges"][0], atol=1e-9)


def test_supercell_energy_is_the_repeated_cell(copper_model: EGNNModel) -> None:
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.rattle(0.05, seed=2)
    big = cell * (2, 1, 2)
    e_cell = _energy(copper_model, cell)
    assert _energy(copper_model, big) == pytest.approx(4 * e_cell, rel=1e-9)
    shifted = cell.copy()
    shifted.positions[1] += cell.cell[0]  # the same crystal, an atom moved by a lattice vector
    assert _energy(copper_model, shifted) == pytest.approx(e_cell, rel=1e-10)


def test_energy_is_continuous_at_the_cutoff(molecule_model: EGNNModel) -> None:
    cutoff = molecule_model.config.datamodule.cut_off
    energies = []
    for r in (cutoff - 1e-6, cutoff + 1e-6):
        atoms = ase.Atoms("CO", positions=[[0, 0, 0], [r, 0, 0]])
        energies.append(_energy(molecule_model, atoms))
    assert abs(energies[0] - energies[1]) < 1e-9


def test_float64_model_leaves_the_default_dtype_alone(molecule_model: EGNNModel) -> None:
    assert torch.get_default_dtype() == torch.float32
    assert all(p.dtype == torch.float64 for p in molecule_model.module.network.parameters())


def test_every_layer_says_what_it_is(molecule_model: EGNNModel, tmp_path: Path) -> None:
    text = repr(molecule_model.module.network)
    assert "trainable weights" in text and "hidden=16" in text and "cutoff=4.0" in text
