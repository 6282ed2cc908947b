"""Checks every model family must pass, shared by the per-family test files.

A family's test file declares ``class Test<Family>(FamilyContract)`` with the family's model
class and a small architecture; :class:`FamilyContract` builds a molecule and a periodic model
from them (float64, for the symmetry checks) and runs these on both:

- :func:`check_symmetries`: energy invariant under rotation, translation and permutation;
  forces (and dipoles, node vectors) rotate with the structure; node scalars invariant (< 1e-9).
- :func:`check_periodic_consistency`: a supercell has the energy of the repeated cell times the
  repeat count; moving an atom by a lattice vector changes nothing; stress is the strain
  derivative of the energy over the volume.
- :func:`check_forces_are_gradients`: forces equal minus the finite-difference gradient.
- :func:`check_learns`: a short training brings the validation force MAE below a threshold.
- :func:`check_save_load`: a saved model predicts identically after loading.

Families whose energy goes smoothly to zero at the cutoff also call
:func:`check_energy_continuous_at_cutoff`. Learning tests build their runs with
:func:`learning_config`, the slow accuracy tests with :func:`final_metrics`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import ase
import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from scipy.spatial.transform import Rotation

from physicsml_like import load_model
from physicsml_like.training.wrapper import PhysicsMLModel

MOLECULE_TARGETS = {"y_graph_scalars": ["energy"], "y_node_vector": "forces"}
PERIODIC_TARGETS = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress"}
#: The molecule targets besides energy and forces that the contract checks by default.
DIPOLE_AND_CHARGES = {"y_graph_vector": "dipole", "y_node_scalars": ["charges"]}


def small_config(root: Path, datamodule: dict[str, Any], *, epochs: int = 2, **fields: Any) -> dict[str, Any]:
    """Shared (non-architecture) settings of a fast test model."""
    periodic = "y_stress" in datamodule
    return {
        "datamodule": {"cut_off": 4.0, "train": {"batch_size": 8}, **datamodule},
        "compute_forces": True,
        "compute_stress": periodic,
        "trainer": {"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False},
        **fields,
    }


def _rotation() -> np.ndarray:
    return Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()


def _moved(atoms: ase.Atoms, rotation: np.ndarray, permutation: np.ndarray) -> ase.Atoms:
    moved = atoms.copy()
    moved.positions = atoms.positions @ rotation.T + np.array([1.3, -0.4, 7.0])
    moved.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return moved[permutation]


def check_symmetries(model: PhysicsMLModel, atoms: ase.Atoms, *, atol: float = 1e-9) -> None:
    """Energy invariant, forces/vectors equivariant, node scalars invariant (float64 model)."""
    rotation = _rotation()
    permutation = np.random.default_rng(0).permutation(len(atoms))
    ref = model.predict([atoms])
    new = model.predict([_moved(atoms, rotation, permutation)])
    kinds = model.prediction_kinds()
    for name, kind in kinds.items():
        if kind == "graph_scalar":
            scale = max(1.0, abs(float(ref[name][0])))
            assert abs(float(new[name][0]) - float(ref[name][0])) < atol * scale, name
        elif kind in ("forces", "node_vector"):
            np.testing.assert_allclose(new[name][0], (ref[name][0] @ rotation.T)[permutation], atol=atol, err_msg=name)
        elif kind == "node_scalar":
            np.testing.assert_allclose(new[name][0], ref[name][0][permutation], atol=atol, err_msg=name)
        elif kind == "graph_vector":
            np.testing.assert_allclose(new[name][0], ref[name][0] @ rotation.T, atol=atol, err_msg=name)
        elif kind == "stress":
            np.testing.assert_allclose(new[name][0], rotation @ ref[name][0] @ rotation.T, atol=atol, err_msg=name)


def _energy(model: PhysicsMLModel, atoms: ase.Atoms) -> float:
    return float(model.predict([atoms])["energy"][0])


def check_periodic_consistency(model: PhysicsMLModel, *, check_stress: bool = True) -> None:
    """Supercell energy, lattice-vector shifts and stress by finite differences (float64)."""
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.rattle(0.05, seed=2)
    e_cell = _energy(model, cell)
    assert _energy(model, cell * (2, 1, 2)) == pytest.approx(4 * e_cell, rel=1e-9, abs=1e-9)
    shifted = cell.copy()
    shifted.positions[1] += cell.cell[0] - 2 * cell.cell[2]
    assert _energy(model, shifted) == pytest.approx(e_cell, rel=1e-10, abs=1e-10)
    if not check_stress:
        return
    atoms = (bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1))
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + [[0.01, 0.02, 0], [0.02, -0.01, 0], [0, 0, 0.015]]), scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    stress = model.predict([atoms])["stress"][0]
    h = 1e-5
    for a, b in [(0, 0), (1, 2), (0, 1)]:
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = h / (2 if a != b else 1)
        values = []
        for sign in (1, -1):
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + sign * strain), scale_atoms=True)
            values.append(_energy(model, strained))
        assert (values[0] - values[1]) / (2 * h) / atoms.get_volume() == pytest.approx(stress[a, b], abs=1e-7)


def check_energy_continuous_at_cutoff(model: PhysicsMLModel) -> None:
    """A C-O pair just inside and just outside the cutoff has the same energy."""
    cutoff = model.config.datamodule.cut_off
    energies = []
    for r in (cutoff - 1e-6, cutoff + 1e-6):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # beyond the cutoff the two atoms have no neighbour
            pair = ase.Atoms("CO", positions=[[0, 0, 0], [r, 0, 0]])
            energies.append(float(model.predict([pair])["energy"][0]))
    assert abs(energies[0] - energies[1]) < 1e-9


def check_forces_are_gradients(model: PhysicsMLModel, atoms: ase.Atoms) -> None:
    forces = model.predict([atoms])["forces"][0]
    h = 1e-5
    for atom, axis in [(0, 0), (1, 1), (len(atoms) - 1, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
        assert numeric == pytest.approx(forces[atom, axis], abs=1e-6)


def learning_config(root: Path, datamodule: dict[str, Any], *, epochs: int, lr: float, **fields: Any) -> dict[str, Any]:
    """Settings of a learning test: :func:`small_config` trained with Adam at ``lr``."""
    return small_config(root, datamodule, epochs=epochs, optimizer={"name": "Adam", "config": {"lr": lr}}, **fields)


def zero_force_mae(frames: list[ase.Atoms]) -> float:
    return float(np.abs(np.concatenate([f.get_forces() for f in frames])).mean())


def check_learns(
    make_model: Callable[[], PhysicsMLModel], train: list[ase.Atoms], val: list[ase.Atoms], max_fraction_of_zero_force: float
) -> pd.DataFrame:
    """Train, then assert val force MAE < fraction x zero-force MAE and that it fell."""
    model = make_model().train(train, val)
    metrics = pd.read_csv(model.run_dir / "metrics.csv").dropna(subset=["val/forces_mae"])
    final = float(metrics["val/forces_mae"].iloc[-1])
    baseline = zero_force_mae(val)
    assert final < max_fraction_of_zero_force * baseline, f"val forces MAE {final:.3f} vs zero-force {baseline:.3f}"
    return metrics


def final_metrics(
    model_class: type[PhysicsMLModel], root: Path, train: list[ase.Atoms], val: list[ase.Atoms],
    *, epochs: int, periodic: bool, **arch: Any,
) -> pd.Series:
    """The last validation metrics of a longer training (the slow accuracy tests): Adam at 1e-2,
    with a 4.5 Å cutoff on molecules, and 4.0 Å and stress on periodic cells."""
    datamodule = PERIODIC_TARGETS if periodic else {**MOLECULE_TARGETS, "cut_off": 4.5}
    model = model_class(learning_config(root, datamodule, epochs=epochs, lr=1e-2, **arch)).train(train, val)
    return pd.read_csv(model.run_dir / "metrics.csv").dropna(subset=["val/forces_mae"]).iloc[-1]


def check_save_load(model: PhysicsMLModel, frames: list[ase.Atoms], folder: Path) -> None:
    model.save(folder)
    loaded = load_model(folder)
    assert type(loaded) is type(model)
    a, b = model.predict(frames), loaded.predict(frames)
    for name in a:
        if isinstance(a[name], list):
            for x, y in zip(a[name], b[name], strict=True):
                np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(a[name], b[name])


class FamilyContract:
    """The contract tests of one family, collected through its ``Test<Family>`` subclass (the
    base's name does not start with ``Test``, so pytest does not collect it on its own).

    A subclass sets :attr:`model_class` and :attr:`arch`, and where the family differs,
    :attr:`molecule_extras` (the molecule targets its heads support besides energy and forces),
    :attr:`periodic_fields` (settings of the periodic model only) or :meth:`config`. Both models
    are built once per class; the family's own tests on them are methods of the subclass.
    """

    model_class: ClassVar[type[PhysicsMLModel]]
    #: A small architecture: the models are built in float64 and checked to 1e-9.
    arch: ClassVar[dict[str, Any]]
    molecule_extras: ClassVar[dict[str, Any]] = DIPOLE_AND_CHARGES
    periodic_fields: ClassVar[dict[str, Any]] = {}

    @classmethod
    def config(cls, root: Path, datamodule: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A float64 test configuration of the family's small architecture."""
        return small_config(root, datamodule, model_dtype="float64", **cls.arch, **fields)

    @pytest.fixture(scope="class")
    @classmethod
    def molecule_model(cls, tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms]) -> PhysicsMLModel:
        """Energy, forces and :attr:`molecule_extras` on ethanol, built once for the class."""
        config = cls.config(tmp_path_factory.mktemp("runs"), {**MOLECULE_TARGETS, **cls.molecule_extras})
        return cls.model_class(config).initialise(ethanol[:20])

    @pytest.fixture(scope="class")
    @classmethod
    def periodic_model(cls, tmp_path_factory: pytest.TempPathFactory, cu_frames: list[ase.Atoms]) -> PhysicsMLModel:
        """Energy, forces and stress on copper cells, built once for the class."""
        config = cls.config(tmp_path_factory.mktemp("runs"), PERIODIC_TARGETS, **cls.periodic_fields)
        return cls.model_class(config).initialise(cu_frames[:20])

    def test_symmetries(self, molecule_model: PhysicsMLModel, periodic_model: PhysicsMLModel,
                        ethanol: list[ase.Atoms], cu_frames: list[ase.Atoms]) -> None:
        check_symmetries(molecule_model, ethanol[7])
        check_symmetries(periodic_model, cu_frames[8])

    def test_periodic_consistency_and_stress(self, periodic_model: PhysicsMLModel) -> None:
        check_periodic_consistency(periodic_model)

    def test_forces_are_gradients(self, molecule_model: PhysicsMLModel, periodic_model: PhysicsMLModel,
                                  ethanol: list[ase.Atoms], cu_frames: list[ase.Atoms]) -> None:
        check_forces_are_gradients(molecule_model, ethanol[3])
        check_forces_are_gradients(periodic_model, cu_frames[3])

    def test_save_load(self, molecule_model: PhysicsMLModel, ethanol: list[ase.Atoms], tmp_path: Path) -> None:
        check_save_load(molecule_model, ethanol[:4], tmp_path / "saved")
