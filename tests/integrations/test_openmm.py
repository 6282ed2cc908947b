"""OpenMM through openmm-ml: energies and forces equal ``predict`` after unit conversion (a
molecule, a triclinic periodic cell, a subset of atoms), dynamics stay finite and conserve
energy, a peptide (ML) in TIP3P water (amber14) runs, and bad input is named."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import pytest
import torch
from openmm import unit
from openmmml import MLPotential

from physicsml_like import PaiNNModel, load_model
from physicsml_like.datasets import load_dataset
from physicsml_like.errors import ConfigError, DataError
from physicsml_like.integrations import openmm as omm
from physicsml_like.integrations.openmm import EV_IN_KJ_PER_MOL, TorchForceModule, openmm_topology
from tests.compat.make_saved_models import HERE as SAVED

ROOT = Path(__file__).resolve().parents[2]
PEPTIDE = Path(__file__).parent / "data" / "alanine_dipeptide.pdb"
KJ_PER_MOL = unit.kilojoule_per_mole
# in float64 the conversion is exact up to rounding: 1e-6 relative leaves room for nothing else
RTOL = 1e-6

# Measured on the 2-core Xeon (see docs/openmm.md): the total-energy spread of 500 Verlet steps of
# 0.25 fs of ethanol from 300 K is 2.0e-2 kJ/mol (0.2 meV) while the kinetic energy swings by
# 25 kJ/mol; the bound leaves a factor 5 for other seeds and machines, and forces of the wrong
# sign or unit (a spread of the order of the kinetic swing) fail it.
NVE_DRIFT_BOUND = 0.1


@pytest.fixture(scope="module")
def organic_path(tmp_path_factory, small_molecules) -> Path:
    """A tiny PaiNN (H, C, N, O, F, S, Cl) trained one epoch on the bundled small molecules."""
    folder = tmp_path_factory.mktemp("organic")
    model = PaiNNModel(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0,
                    "train": {"batch_size": 32}},
        compute_forces=True, num_features=8, num_layers=1, model_dtype="float64",
        trainer={"max_epochs": 1, "default_root_dir": str(folder / "runs"), "enable_progress_bar": False,
                 "logger": False, "enable_checkpointing": False},
    )
    model.train(small_molecules)
    return model.save(folder / "model")


@pytest.fixture(scope="module")
def copper_path(tmp_path_factory) -> Path:
    """The saved tiny MACE of copper (perturbed weights, stress), saved again with today's field
    names so that loading it by path warns of nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_model(SAVED / "mace_periodic")
    return model.save(tmp_path_factory.mktemp("copper") / "model")


def _evaluate(system: openmm.System, positions, groups: set[int] | None = None) -> tuple[float, np.ndarray]:
    """Energy (kJ/mol) and forces (kJ/mol/nm) on the double-precision Reference platform."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True, **({"groups": groups} if groups else {}))
    return (state.getPotentialEnergy().value_in_unit(KJ_PER_MOL),
            state.getForces(asNumpy=True).value_in_unit(KJ_PER_MOL / unit.nanometer))


def _errors(energy: float, forces: np.ndarray, expected_energy: float, expected_forces: np.ndarray) -> tuple[float, float]:
    """Relative errors of energy and forces against predict's values (eV, eV/Å) in OpenMM units."""
    e_ref = expected_energy * EV_IN_KJ_PER_MOL
    f_ref = expected_forces * EV_IN_KJ_PER_MOL * 10.0
    return abs(energy - e_ref) / abs(e_ref), float(np.abs(forces - f_ref).max() / np.abs(f_ref).max())


# ---------------------------------------------------------------------------------- registration
def test_registered_by_import_and_declared_as_an_entry_point() -> None:
    assert isinstance(MLPotential._implFactories["physicsml_like"], omm.PhysicsMLLikePotentialImplFactory)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["openmmml.potentials"]
    point = importlib.metadata.EntryPoint("physicsml_like", declared["physicsml_like"], "openmmml.potentials")
    from physicsml_like.integrations.openmm_entry import PhysicsMLLikeEntryPoint

    assert point.load() is PhysicsMLLikeEntryPoint


@pytest.mark.parametrize("first", ["physicsml_like.integrations.openmm", "openmmml"])
def test_either_package_imports_first_in_a_fresh_process(first: str) -> None:
    """openmm-ml imports its entry points while it is being imported: the integration imported
    first once failed there with a circular import."""
    script = (f"import {first}\nfrom openmmml import MLPotential\nimport physicsml_like.integrations.openmm\n"
              "print(type(MLPotential._implFactories['physicsml_like']).__name__)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("PhysicsMLLikeEntryPoint", "PhysicsMLLikePotentialImplFactory")


# ---------------------------------------------------------------------------------- equality
def test_molecule_energy_and_forces_equal_predict(organic_path, ethanol, caplog) -> None:
    frame = ethanol[5]
    topology, positions = openmm_topology(frame)
    with caplog.at_level(logging.INFO, logger="physicsml_like"):
        system = MLPotential("physicsml_like", model_path=str(organic_path)).createSystem(topology)
    assert "through PythonForce (openmm-torch is not installed)" in caplog.text
    assert not system.usesPeriodicBoundaryConditions()
    expected = load_model(organic_path).predict([frame])
    energy, forces = _evaluate(system, positions)
    assert np.abs(expected["forces"][0]).max() > 1e-2  # the compared forces are not trivially zero
    e_err, f_err = _errors(energy, forces, expected["energy"][0], expected["forces"][0])
    assert e_err < RTOL and f_err < RTOL, (e_err, f_err)


def test_triclinic_periodic_cell_equals_predict(copper_path, cu_frames) -> None:
    frame = cu_frames[0]  # 32 atoms in a slightly triclinic cell, not in OpenMM's orientation
    assert np.abs(frame.cell.array - np.diag(np.diag(frame.cell.array))).max() > 1e-3
    topology, positions = openmm_topology(frame)
    system = MLPotential("physicsml_like", model_path=copper_path).createSystem(topology)
    assert system.usesPeriodicBoundaryConditions()
    expected = load_model(copper_path).predict([frame])
    _, rotation = frame.cell.standard_form()  # OpenMM's frame is the rotated one
    energy, forces = _evaluate(system, positions)
    e_err, f_err = _errors(energy, forces, expected["energy"][0], expected["forces"][0] @ rotation.T)
    assert e_err < RTOL and f_err < RTOL, (e_err, f_err)


def test_wrong_units_fail_the_comparison(organic_path, ethanol) -> None:
    """Mutation check: kcal/mol instead of kJ/mol, or Å taken for nm, breaks the equality."""
    frame = ethanol[5]
    topology, positions = openmm_topology(frame)
    expected = load_model(organic_path).predict([frame])
    for wrong in ({"output_scaling": 23.0605}, {"position_scaling": 1.0}):
        system = MLPotential("physicsml_like", model_path=organic_path, **wrong).createSystem(topology)
        energy, forces = _evaluate(system, positions)
        assert max(_errors(energy, forces, expected["energy"][0], expected["forces"][0])) > 1e-2


def test_a_subset_of_atoms_gets_the_model_and_the_rest_nothing(organic_path, ethanol) -> None:
    """Two ethanols far apart, the model on the second only: its energy and forces are predict's
    of that molecule alone, the first molecule feels no force."""
    import ase

    first, second = ethanol[1].copy(), ethanol[7].copy()
    second.positions += 30.0
    both = ase.Atoms(numbers=np.concatenate([first.numbers, second.numbers]),
                     positions=np.concatenate([first.positions, second.positions]))
    topology, positions = openmm_topology(both)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    ml_atoms = list(range(len(first), len(both)))
    impl = omm.PhysicsMLLikePotentialImpl(model_path=organic_path)
    impl.addForces(topology, system, ml_atoms, 0)
    energy, forces = _evaluate(system, positions)
    expected = load_model(organic_path).predict([ethanol[7]])
    assert np.all(forces[: len(first)] == 0)
    e_err, f_err = _errors(energy, forces[len(first):], expected["energy"][0], expected["forces"][0])
    assert e_err < RTOL and f_err < RTOL, (e_err, f_err)


def test_physicsml_precision_argument(organic_path, ethanol) -> None:
    frame = ethanol[5]
    topology, positions = openmm_topology(frame)
    e64, f64 = _evaluate(MLPotential("physicsml_like", model_path=organic_path, precision="64").createSystem(topology), positions)
    e32, f32 = _evaluate(MLPotential("physicsml_like", model_path=organic_path, precision="32").createSystem(topology), positions)
    assert e32 != e64 and abs(e32 - e64) / abs(e64) < 1e-5
    np.testing.assert_allclose(f32, f64, rtol=0, atol=1e-3 * np.abs(f64).max())


def test_serialised_system_reloads_the_model_from_its_path(organic_path, ethanol) -> None:
    """OpenMM serialises a PythonForce by pickling its function: a copied System (XmlSerializer)
    gives the same energy."""
    topology, positions = openmm_topology(ethanol[3])
    system = MLPotential("physicsml_like", model_path=organic_path).createSystem(topology)
    copied = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    assert _evaluate(copied, positions)[0] == pytest.approx(_evaluate(system, positions)[0], rel=1e-12)


# ---------------------------------------------------------------------------------- dynamics
def test_langevin_picosecond_stays_finite(organic_path, ethanol) -> None:
    topology, positions = openmm_topology(ethanol[0])
    system = MLPotential("physicsml_like", model_path=organic_path).createSystem(topology)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 5 / unit.picosecond, 1.0 * unit.femtosecond)
    integrator.setRandomNumberSeed(1)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    simulation.step(1000)  # 1 ps
    state = simulation.context.getState(getEnergy=True, getPositions=True)
    moved = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert np.isfinite(moved).all() and np.isfinite(state.getPotentialEnergy().value_in_unit(KJ_PER_MOL))
    assert np.abs(moved - positions.value_in_unit(unit.nanometer)).max() > 1e-3  # it moved


def test_verlet_energy_drift_is_bounded(organic_path, ethanol) -> None:
    topology, positions = openmm_topology(ethanol[0])
    system = MLPotential("physicsml_like", model_path=organic_path, precision="64").createSystem(topology)
    simulation = app.Simulation(topology, system, openmm.VerletIntegrator(0.25 * unit.femtosecond),
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 2)
    totals, kinetic = [], []
    for _ in range(50):
        simulation.step(10)
        state = simulation.context.getState(getEnergy=True)
        kinetic.append(state.getKineticEnergy().value_in_unit(KJ_PER_MOL))
        totals.append(kinetic[-1] + state.getPotentialEnergy().value_in_unit(KJ_PER_MOL))
    drift = max(totals) - min(totals)
    print(f"NVE 500 x 0.25 fs: total-energy spread {drift:.2e} kJ/mol, kinetic spread {np.ptp(kinetic):.2f} kJ/mol")
    assert np.ptp(kinetic) > 10 * NVE_DRIFT_BOUND  # energy flows between kinetic and potential
    assert drift < NVE_DRIFT_BOUND


def test_peptide_in_water_mixed_system_runs(organic_path) -> None:
    """Alanine dipeptide (ML) in TIP3P water (amber14, PME): 100 Langevin steps; the ML force
    group's energy is predict's for the peptide, and amber's bonds inside the peptide are gone."""
    pdb = app.PDBFile(str(PEPTIDE))
    forcefield = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addSolvent(forcefield, padding=0.6 * unit.nanometer, model="tip3p")
    mm_system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                        nonbondedCutoff=0.7 * unit.nanometer, constraints=app.HBonds)
    ml_atoms = [atom.index for atom in next(modeller.topology.chains()).atoms()]
    assert len(ml_atoms) == 22 and modeller.topology.getNumAtoms() > 200
    system = MLPotential("physicsml_like", model_path=organic_path).createMixedSystem(
        modeller.topology, mm_system, ml_atoms, forceGroup=1)
    bonds = next(f for f in system.getForces() if isinstance(f, openmm.HarmonicBondForce))
    ml = set(ml_atoms)
    assert not any({*bonds.getBondParameters(b)[:2]} <= ml for b in range(bonds.getNumBonds()))
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
    integrator.setRandomNumberSeed(3)
    simulation = app.Simulation(modeller.topology, system, integrator, openmm.Platform.getPlatformByName("CPU"),
                                {"Threads": "1"})
    simulation.context.setPositions(modeller.positions)
    simulation.step(100)
    state = simulation.context.getState(getEnergy=True, getPositions=True, enforcePeriodicBox=False)
    assert np.isfinite(state.getPotentialEnergy().value_in_unit(KJ_PER_MOL))
    # the ML group alone, at the final positions, is predict's energy of the peptide
    import ase

    ml_state = simulation.context.getState(getEnergy=True, groups={1})
    peptide = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)[ml_atoms]
    numbers = [atom.element.atomic_number for atom in modeller.topology.atoms()][: len(ml_atoms)]
    box = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.angstrom))
    expected = load_model(organic_path).predict([ase.Atoms(numbers=numbers, positions=peptide, cell=box, pbc=True)])
    assert ml_state.getPotentialEnergy().value_in_unit(KJ_PER_MOL) == pytest.approx(
        expected["energy"][0] * EV_IN_KJ_PER_MOL, rel=RTOL)


# ---------------------------------------------------------------------------------- bad input
def test_an_element_the_model_does_not_know_is_named_at_create_system(copper_path, ethanol) -> None:
    topology, _ = openmm_topology(ethanol[0])
    potential = MLPotential("physicsml_like", model_path=copper_path)
    with pytest.raises(DataError) as error:
        potential.createSystem(topology)
    message = str(error.value)
    assert "atom 0 ('C0' of residue MOL 1)" in message and "is C" in message and "knows Cu" in message


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"repo_url": "x", "rev": "y"}, "repo_url"),
        ({"lengthScale": 0.1}, "lengthScale"),
        ({"precision": "16"}, "precision"),
        ({"backend": "jax"}, "backend"),
        ({"y_output": "dipole"}, "y_output"),
    ],
)
def test_bad_arguments_are_named(organic_path, arguments, named) -> None:
    with pytest.raises(ConfigError, match=named):
        MLPotential("physicsml_like", model_path=organic_path, **arguments)


def test_torch_backend_without_openmm_torch_says_what_is_missing(organic_path, ethanol) -> None:
    if importlib.util.find_spec("openmmtorch") is not None:
        pytest.skip("openmm-torch is installed")
    topology, _ = openmm_topology(ethanol[0])
    with pytest.raises(ConfigError, match="openmm-torch"):
        MLPotential("physicsml_like", model_path=organic_path, backend="torch").createSystem(topology)


# ---------------------------------------------------------------------------------- TorchForce
class _Harmonic(torch.nn.Module):
    """Stands in for an exported model: E = k |r|^2 (eV, Å), with the export's signature."""

    def forward(self, positions, atomic_numbers, cell, pbc):
        energy = 0.5 * (positions * positions).sum() + 0.0 * cell.sum()
        return {"energy": energy.reshape(1), "forces": -positions}


def test_torch_force_module_converts_units_and_scatters_forces() -> None:
    """The TorchForce wrapper (nm in, kJ/mol and kJ/mol/nm out, ML atoms only) scripts, and
    gives a known potential's values; OpenMM itself runs it only where openmm-torch installs."""
    inner = torch.jit.script(_Harmonic())
    wrapper = torch.jit.script(TorchForceModule(inner, np.array([1, 8]), [1, 3], 4, True, 10.0, EV_IN_KJ_PER_MOL,
                                                torch.float64))
    positions = torch.tensor([[9.0, 9, 9], [0.1, 0.2, 0.3], [9, 9, 9], [0.0, -0.1, 0.2]], dtype=torch.float64)
    energy, forces = wrapper(positions, torch.eye(3, dtype=torch.float64))
    chosen = positions[[1, 3]] * 10.0
    assert energy.item() == pytest.approx(0.5 * float((chosen**2).sum()) * EV_IN_KJ_PER_MOL, rel=1e-12)
    assert torch.all(forces[[0, 2]] == 0)
    torch.testing.assert_close(forces[[1, 3]], -chosen * EV_IN_KJ_PER_MOL * 10.0)
    assert "2 of 4 particles" in repr(TorchForceModule(inner, np.array([1, 8]), [1, 3], 4, True, 10.0, 1.0, torch.float64))


def test_torch_force_module_around_the_exported_model_equals_predict(copper_path, tmp_path) -> None:
    """What TorchForce would call, built from the real TorchScript export of a periodic MACE:
    nm and kJ/mol out equal predict's values after unit conversion (the engine itself is not
    installable here)."""
    model = load_model(copper_path)
    frame = load_dataset("cu_emt")[4]
    inner = torch.jit.load(str(model.export(tmp_path / "copper.pt")))
    wrapper = torch.jit.script(TorchForceModule(inner, frame.numbers, None, len(frame), True, 10.0,
                                                EV_IN_KJ_PER_MOL, torch.float64))
    energy, forces = wrapper(torch.tensor(frame.positions / 10.0), torch.tensor(frame.cell.array / 10.0))
    want = model.predict([frame])
    errors = _errors(float(energy), forces.numpy(), float(want["energy"][0]), want["forces"][0])
    assert np.abs(want["forces"][0]).max() > 1e-3
    assert max(errors) < RTOL, errors


def test_torch_force_in_openmm_equals_python_force(organic_path, ethanol) -> None:
    """Where openmm-torch is installed (not here: its CPU wheel needs torch < 2.13)."""
    pytest.importorskip("openmmtorch")
    model = load_model(organic_path)
    if not hasattr(model, "export"):
        pytest.skip("this version cannot export to TorchScript")
    topology, positions = openmm_topology(ethanol[5])
    torch_energy, torch_forces = _evaluate(
        MLPotential("physicsml_like", model_path=organic_path, backend="torch").createSystem(topology), positions)
    energy, forces = _evaluate(
        MLPotential("physicsml_like", model_path=organic_path, backend="python").createSystem(topology), positions)
    assert torch_energy == pytest.approx(energy, rel=RTOL)
    np.testing.assert_allclose(torch_forces, forces, rtol=0, atol=RTOL * np.abs(forces).max())
