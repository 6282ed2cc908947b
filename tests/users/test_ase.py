"""The ASE calculator: energy conservation, relaxation, agreement with predict, periodic stress."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
from ase import units
from ase.filters import FrechetCellFilter
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from physicsml_like import DataError, EGNNModel
from physicsml_like.calculators import PhysicsMLCalculator
from physicsml_like.variants import EnsembleModel

from ..training.helpers import CU_TARGETS, tiny_egnn


@pytest.fixture(scope="module")
def molecule_model(tmp_path_factory, ethanol) -> EGNNModel:
    return EGNNModel(tiny_egnn(tmp_path_factory.mktemp("runs"), epochs=4, model_dtype="float64")).train(ethanol[:64])


@pytest.fixture(scope="module")
def copper_model(tmp_path_factory, cu_frames) -> EGNNModel:
    fields = tiny_egnn(tmp_path_factory.mktemp("runs"), epochs=3, datamodule=CU_TARGETS, compute_stress=True)
    return EGNNModel(fields).train(cu_frames[:48])


def test_calculator_agrees_with_predict(molecule_model, copper_model, ethanol, cu_frames) -> None:
    for model, atoms in ((molecule_model, ethanol[300]), (copper_model, cu_frames[200])):
        reference = model.predict([atoms])
        atoms = atoms.copy()
        atoms.calc = model.to_ase_calculator()
        assert atoms.get_potential_energy() == pytest.approx(float(reference["energy"][0]), abs=1e-9)
        np.testing.assert_allclose(atoms.get_forces(), reference["forces"][0], atol=1e-9)
    stress = atoms.get_stress(voigt=False)
    np.testing.assert_allclose(stress, reference["stress"][0], atol=1e-9)


def test_nve_dynamics_conserves_energy(molecule_model, ethanol) -> None:
    atoms = ethanol[100].copy()
    atoms.calc = molecule_model.to_ase_calculator()
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, 0.25 * units.fs)
    energies = []
    for _ in range(200):
        dynamics.run(1)
        energies.append(atoms.get_total_energy())
    # measured: 1.3e-6 eV over 50 fs in float64 (kinetic energy ~0.2 eV)
    assert max(energies) - min(energies) < 1e-4
    assert atoms.get_kinetic_energy() > 0.05, "the molecule really moved"


def test_relaxation_converges(molecule_model, copper_model, ethanol, cu_frames) -> None:
    atoms = ethanol[50].copy()
    atoms.calc = molecule_model.to_ase_calculator()
    start = atoms.get_potential_energy()
    assert BFGS(atoms, logfile=None).run(fmax=0.01, steps=400)
    assert atoms.get_potential_energy() < start
    assert np.abs(atoms.get_forces()).max() < 0.01
    crystal = cu_frames[10].copy()
    crystal.calc = copper_model.to_ase_calculator(dtype="float64")
    assert BFGS(FrechetCellFilter(crystal), logfile=None).run(fmax=0.02, steps=400)


def test_precision_switch_and_saved_model(molecule_model, ethanol, tmp_path: Path) -> None:
    float32 = EGNNModel(tiny_egnn(tmp_path, epochs=1)).train(ethanol[:16])
    calc = float32.to_ase_calculator(dtype="float64")
    assert next(calc.module.network.parameters()).dtype.is_floating_point
    atoms = ethanol[7].copy()
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(float(float32.predict([ethanol[7]])["energy"][0]), abs=1e-3)
    path = molecule_model.save(tmp_path / "saved")
    loaded = PhysicsMLCalculator.from_saved(str(path))
    atoms.calc = loaded
    assert atoms.get_potential_energy() == pytest.approx(float(molecule_model.predict([ethanol[7]])["energy"][0]), abs=1e-9)


def test_ensemble_calculator_reports_spread(tmp_path: Path, ethanol) -> None:
    ensemble = EnsembleModel(EGNNModel(tiny_egnn(tmp_path, epochs=1)), n_members=2).train(ethanol[:16])
    atoms = ethanol[3].copy()
    atoms.calc = ensemble.to_ase_calculator()
    energy = atoms.get_potential_energy()
    results = atoms.calc.results
    assert results["energy_std"] > 0 and results["forces_std"].shape == (9, 3)
    assert energy == pytest.approx(float(ensemble.predict([ethanol[3]])["energy"][0]), abs=1e-6)


def test_unknown_element_is_a_clear_error(molecule_model) -> None:
    atoms = ase.Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    atoms.calc = molecule_model.to_ase_calculator()
    with pytest.raises(DataError, match=r"element N \(Z=7\) is not in the element mapping"):
        atoms.get_potential_energy()
