"""torch-sim: the model passes torch-sim's own interface check, gives ``predict``'s values on a
batch of many structures, and batched relaxations and dynamics run through it.

torch-sim 0.3 keeps one periodicity flag for the whole state (all structures periodic in all
three directions, or none): a slab is a periodic cell with vacuum, and molecules go in a
non-periodic state. A per-direction flag, which later versions may carry, is passed through
(tested with a state dict).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from typing import Any

import ase
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from threadpoolctl import threadpool_limits

from physicsml_like import EnsembleModel, MACEModel, PaiNNModel
from physicsml_like.errors import DataError
from tests.models.contract import MOLECULE_TARGETS, PERIODIC_TARGETS, perturb_weights, small_config

ts = pytest.importorskip("torch_sim")
from torch_sim.models.interface import validate_model_outputs  # noqa: E402

from physicsml_like.integrations import torch_sim as adapter  # noqa: E402

CPU = torch.device("cpu")
TINY_MACE = {"hidden_irreps": "4x0e + 4x1o", "max_ell": 1, "correlation": 2, "num_interactions": 1, "mlp_irreps": "8x0e"}
TOLERANCE = 1e-6  # eV, eV/Å, eV/Å³ in float64 (the adapter converts layouts only: ~1e-12 in practice)


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """One thread for torch and for BLAS: ASE's cell filter solves many 3x3 systems, which a
    multi-threaded OpenBLAS on a busy machine makes a hundred times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


def _labelled(frames: list[ase.Atoms]) -> list[ase.Atoms]:
    """``frames`` with Lennard-Jones energy, forces and stress labels (only the statistics of
    these labels are used: the models are initialised, not trained)."""
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = LennardJones(sigma=2.3, epsilon=0.1, rc=4.0)
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if atoms.pbc.all():
            results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
    return out


def _sheared(atoms: ase.Atoms, seed: int) -> ase.Atoms:
    """``atoms`` in a sheared cell whose matrix is not symmetric, so that a transposed cell
    gives other energies (a cubic or fcc-primitive cell is its own transpose)."""
    atoms = atoms.copy()
    shear = np.eye(3) + np.random.default_rng(seed).uniform(-0.06, 0.06, (3, 3))
    atoms.set_cell(atoms.cell.array @ shear, scale_atoms=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def periodic_model(tmp_path_factory: pytest.TempPathFactory) -> MACEModel:
    """A tiny float64 MACE with stress for Si, Fe and Cu (the elements torch-sim's interface
    check uses), perturbed weights."""
    frames = _labelled([_sheared(bulk("Si", "diamond", a=5.43, cubic=True), 1),
                        _sheared(bulk("Fe", "bcc", a=2.87, cubic=True), 2),
                        _sheared(bulk("Cu", "fcc", a=3.6, cubic=True), 3)])
    config = small_config(tmp_path_factory.mktemp("mace"), PERIODIC_TARGETS, model_dtype="float64", **TINY_MACE)
    return perturb_weights(MACEModel(config).initialise(frames), scale=0.1)


@pytest.fixture(scope="module")
def molecule_model(tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms]) -> PaiNNModel:
    """A tiny float64 PaiNN with energy and forces (no stress) for H, C, O, Si and Fe."""
    clusters = [ase.Atoms(symbol * 4, positions=np.random.default_rng(k).uniform(0, 4, (4, 3)))
                for k, symbol in enumerate(("Si", "Fe"))]
    config = small_config(tmp_path_factory.mktemp("painn"), MOLECULE_TARGETS, model_dtype="float64",
                          num_features=8, num_bessel=8, num_layers=2)
    return perturb_weights(PaiNNModel(config).initialise([*ethanol[:4], *_labelled(clusters)]), scale=0.1)


@pytest.fixture(scope="module")
def cu_model(tmp_path_factory: pytest.TempPathFactory, cu_frames: list[ase.Atoms]) -> MACEModel:
    """A tiny float64 MACE trained two epochs on copper (EMT labels): a smooth potential whose
    fcc lattice is a minimum, for relaxations and dynamics."""
    config = small_config(tmp_path_factory.mktemp("cu"), PERIODIC_TARGETS, model_dtype="float64",
                          optimizer={"name": "Adam", "config": {"lr": 0.01}},
                          **{**TINY_MACE, "hidden_irreps": "8x0e + 8x1o"})
    return MACEModel(config).train(cu_frames[:64])


# ---------------------------------------------------------------------- torch-sim's own check
def test_periodic_model_passes_torch_sims_interface_check(periodic_model: MACEModel) -> None:
    model = periodic_model.to_torch_sim()
    assert model.compute_stress and model.compute_forces
    assert model.dtype == torch.float64 and model.device == CPU
    validate_model_outputs(model, CPU, torch.float64)


def test_molecule_model_without_stress_passes_torch_sims_interface_check(molecule_model: PaiNNModel) -> None:
    model = molecule_model.to_torch_sim()
    assert not model.compute_stress
    with pytest.raises(NotImplementedError):  # what the model computes is fixed by its training
        model.compute_stress = True
    validate_model_outputs(model, CPU, torch.float64)
    state = ts.io.atoms_to_state([bulk("Si", "diamond", a=5.43)], CPU, torch.float64)
    assert "stress" not in model(state)


# ---------------------------------------------------------------------- equal to predict
def _periodic_frames() -> list[ase.Atoms]:
    """Bulk cells of three elements and sizes in sheared cells, and a copper slab: a periodic
    cell with 10 Å of vacuum (torch-sim 0.3 has one pbc flag for the whole state)."""
    slab = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    slab.center(vacuum=5.0, axis=2)
    slab.rattle(0.05, seed=9)
    return [_sheared(bulk("Si", "diamond", a=5.43, cubic=True), 4),
            _sheared(bulk("Fe", "bcc", a=2.87, cubic=True).repeat((2, 2, 1)), 5),
            _sheared(bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1)), 6),
            slab]


def _assert_matches_predict(model: Any, frames: list[ase.Atoms], state: Any = None) -> dict[str, np.ndarray]:
    """torch-sim's results for ``frames`` (in one state) equal ``predict``'s, to TOLERANCE."""
    expected = model.predict(frames)
    state = ts.io.atoms_to_state(frames, CPU, torch.float64) if state is None else state
    got = {k: v.numpy() for k, v in model.to_torch_sim()(state).items()}
    np.testing.assert_allclose(got["energy"], expected["energy"], rtol=0, atol=TOLERANCE)
    forces = np.concatenate(expected["forces"])
    assert np.abs(forces).max() > 1e-3  # the compared forces are not trivially zero
    np.testing.assert_allclose(got["forces"], forces, rtol=0, atol=TOLERANCE)
    if "stress" in expected:
        np.testing.assert_allclose(got["stress"], np.asarray(expected["stress"]).reshape(-1, 3, 3), rtol=0, atol=TOLERANCE)
    return got


def test_periodic_batch_equals_predict(periodic_model: MACEModel) -> None:
    frames = _periodic_frames()
    assert all(np.abs(f.cell.array - f.cell.array.T).max() > 1e-2 for f in frames[:3])  # a transpose shows
    got = _assert_matches_predict(periodic_model, frames)
    assert got["energy"].shape == (4,) and got["forces"].shape == (sum(map(len, frames)), 3)
    assert np.abs(got["stress"]).max(axis=(1, 2)).min() > 1e-5  # every structure has a stress


def test_non_periodic_batch_equals_predict(periodic_model: MACEModel, molecule_model: PaiNNModel,
                                           ethanol: list[ase.Atoms]) -> None:
    cluster = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))[:13]
    cluster.pbc, cluster.cell = False, None
    cluster.rattle(0.05, seed=3)
    mixed = ase.Atoms("Si3Fe2", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.3, 0], [0, 0, 2.3], [2.0, 2.0, 0.3]])
    mixed.rattle(0.05, seed=4)
    got = _assert_matches_predict(periodic_model, [cluster, mixed])
    np.testing.assert_array_equal(got["stress"], 0.0)  # not periodic: no stress, as predict says
    _assert_matches_predict(molecule_model, ethanol[:3])


def test_state_dict_with_per_direction_pbc_equals_predict(periodic_model: MACEModel) -> None:
    """A per-direction flag (as later torch-sim versions may carry) reaches the potential: a
    slab periodic in x and y only, in a state dict."""
    _, _, bulk_cu, slab = _periodic_frames()
    state = ts.io.atoms_to_state([slab, bulk_cu], CPU, torch.float64)  # refuses mixed pbc itself
    slab.pbc = [True, True, False]
    fields = {name: getattr(state, name) for name in ("positions", "cell", "atomic_numbers", "system_idx")}
    fields["pbc"] = torch.tensor([[True, True, False], [True, True, True]])
    got = _assert_matches_predict(periodic_model, [slab, bulk_cu], fields)
    assert np.all(got["stress"][0] == 0) and np.abs(got["stress"][1]).max() > 1e-5


def test_bad_pbc_is_named(periodic_model: MACEModel) -> None:
    state = ts.io.atoms_to_state([bulk("Cu", "fcc", a=3.6)], CPU, torch.float64)
    fields = {name: getattr(state, name) for name in ("positions", "cell", "atomic_numbers", "system_idx")}
    fields["pbc"] = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(DataError, match="pbc") as error:
        periodic_model.to_torch_sim()(fields)
    assert error.value.field == "pbc"


@pytest.mark.parametrize(
    ("name", "broken"),
    [("_row_vector_cells", lambda state: state.cell),  # the column-vector cell read as rows
     ("_stress_to_torch_sim", lambda stress: -stress)],  # the compressive-positive sign
)
def test_a_wrong_cell_layout_or_stress_sign_is_caught(periodic_model: MACEModel, monkeypatch: pytest.MonkeyPatch,
                                                      name: str, broken: Callable[[Any], Any]) -> None:
    """Mutation check of the equality above: an adapter that forgot to transpose torch-sim's
    cell, or flipped the stress sign, fails it."""
    monkeypatch.setattr(adapter, name, broken)
    with pytest.raises(AssertionError):
        _assert_matches_predict(periodic_model, _periodic_frames())


def test_results_follow_the_states_dtype_and_the_requested_precision(periodic_model: MACEModel) -> None:
    frames = _periodic_frames()[:2]
    model = periodic_model.to_torch_sim(dtype=torch.float32)
    assert model.dtype == torch.float32
    out = model(ts.io.atoms_to_state(frames, CPU, torch.float32))
    assert {v.dtype for v in out.values()} == {torch.float32}
    expected = periodic_model.predict(frames)
    np.testing.assert_allclose(out["energy"].numpy(), expected["energy"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(out["forces"].numpy(), np.concatenate(expected["forces"]), rtol=0, atol=1e-4)


def test_ensemble_gives_the_members_mean_as_the_ase_ensemble_calculator(periodic_model: MACEModel) -> None:
    other = perturb_weights(copy.deepcopy(periodic_model), seed=1, scale=0.05)
    ensemble = EnsembleModel(members=[periodic_model, other])
    frames = _periodic_frames()[:3]
    out = ensemble.to_torch_sim()(ts.io.atoms_to_state(frames, CPU, torch.float64))
    calc = ensemble.to_ase_calculator()
    offsets = np.cumsum([0, *map(len, frames)])
    for k, atoms in enumerate(frames):
        atoms = atoms.copy()
        atoms.calc = calc
        np.testing.assert_allclose(out["energy"][k].item(), atoms.get_potential_energy(), rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(out["forces"][offsets[k]:offsets[k + 1]].numpy(), atoms.get_forces(), rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(out["stress"][k].numpy(), atoms.get_stress(voigt=False), rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(out["energy_std"][k].item(), calc.results["energy_std"], rtol=0, atol=TOLERANCE)
    assert out["energy_std"].min() > 1e-4  # the members differ: a mean of one member would show


def test_missing_torch_sim_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_sim", None)  # what `import torch_sim` sees when it is absent
    monkeypatch.setitem(sys.modules, "torch_sim.models.interface", None)
    monkeypatch.delitem(sys.modules, "physicsml_like.integrations.torch_sim")
    with pytest.raises(ImportError, match=r"physicsml_like\[torch-sim\]"):
        import physicsml_like.integrations.torch_sim  # noqa: F401


# ---------------------------------------------------------------------- batched relaxations and MD
FMAX = 0.01  # eV/Å
#: Per-atom energies of a batched torch-sim FIRE and a one-by-one ASE FIRE relaxation agree to
#: this. The two FIRE codes differ in step details (torch-sim checks convergence every 5 steps,
#: its "ase_fire" flavour mixes velocities per structure), so they stop at different points with
#: forces below FMAX; near a minimum with curvature k the energy left is about fmax²/2k per atom,
#: far below this.
ENERGY_PER_ATOM = 1e-4  # eV/atom


def _rattled_copper(n: int, seed: int = 0) -> list[ase.Atoms]:
    """``n`` rattled copper cells of 4 to 12 atoms and lattice constants 3.55-3.65 Å."""
    rng = np.random.default_rng(seed)
    repeats = [(1, 1, 1), (2, 1, 1), (1, 2, 1), (1, 1, 2), (1, 1, 3)]
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=float(rng.uniform(3.55, 3.65)), cubic=True).repeat(repeats[k % len(repeats)])
        atoms.rattle(0.06, seed=int(rng.integers(1 << 30)))
        frames.append(atoms)
    return frames


def _ase_relaxed(model: Any, frames: list[ase.Atoms], *, cell: bool = False) -> list[ase.Atoms]:
    calc = model.to_ase_calculator()
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        FIRE(FrechetCellFilter(atoms) if cell else atoms, logfile=None).run(fmax=FMAX, steps=2000)
        out.append(atoms)
    return out


def test_batched_fire_relaxation_matches_ase_one_by_one(cu_model: MACEModel) -> None:
    frames = _rattled_copper(32)
    model = cu_model.to_torch_sim()
    start = time.perf_counter()
    state = ts.io.atoms_to_state(frames, CPU, torch.float64)
    relaxed = ts.optimize(system=state, model=model, optimizer=ts.optimizers.fire, max_steps=2000,
                          convergence_fn=ts.generate_force_convergence_fn(force_tol=FMAX, include_cell_forces=False))
    batched_s = time.perf_counter() - start
    by_ase = _ase_relaxed(cu_model, frames)
    n_atoms = np.array([len(a) for a in frames])
    final = model(relaxed)
    energies = final["energy"].numpy()
    initial = model(state)["energy"].numpy()
    assert np.all((initial - energies) / n_atoms > 1e-3)  # every structure really relaxed
    forces = final["forces"].norm(dim=1)
    per_system = [forces[relaxed.system_idx == k].max().item() for k in range(len(frames))]
    assert max(per_system) < FMAX  # torch-sim reached fmax on every structure
    assert max(np.linalg.norm(a.get_forces(), axis=1).max() for a in by_ase) < FMAX
    ase_energies = np.array([a.get_potential_energy() for a in by_ase])
    np.testing.assert_allclose(energies / n_atoms, ase_energies / n_atoms, rtol=0, atol=ENERGY_PER_ATOM)
    print(f"batched FIRE of {len(frames)} structures: {batched_s:.1f} s, largest energy difference "
          f"{np.abs(energies - ase_energies).max() / n_atoms.min():.1e} eV/atom")


def test_batched_cell_relaxation_matches_ase_one_by_one(cu_model: MACEModel) -> None:
    """Cell and positions relaxed together (torch-sim's Fréchet-cell FIRE against ASE's FIRE
    with FrechetCellFilter): the same energies and volumes, so the stress reaches the cell with
    the right sign and layout."""
    frames = _rattled_copper(4, seed=1)
    for atoms in frames:  # strained cells: a cell relaxation has work to do
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.02 * np.diag([1.0, -0.5, 0.5])), scale_atoms=True)
    model = cu_model.to_torch_sim()
    state = ts.io.atoms_to_state(frames, CPU, torch.float64)
    relaxed = ts.optimize(system=state, model=model, optimizer=ts.optimizers.frechet_cell_fire, max_steps=3000,
                          convergence_fn=ts.generate_force_convergence_fn(force_tol=FMAX, include_cell_forces=True))
    by_ase = _ase_relaxed(cu_model, frames, cell=True)
    n_atoms = np.array([len(a) for a in frames])
    energies = model(relaxed)["energy"].numpy()
    np.testing.assert_allclose(energies / n_atoms, [a.get_potential_energy() / len(a) for a in by_ase],
                               rtol=0, atol=ENERGY_PER_ATOM)
    volumes = torch.det(relaxed.cell).numpy()
    start_volumes = np.array([a.get_volume() for a in frames])
    assert np.abs(volumes - start_volumes).max() / start_volumes.max() > 1e-3  # the cells did change
    np.testing.assert_allclose(volumes, [a.get_volume() for a in by_ase], rtol=2e-3)


def test_batched_nvt_langevin_stays_finite(cu_model: MACEModel) -> None:
    frames = _rattled_copper(8, seed=2)
    state = ts.io.atoms_to_state(frames, CPU, torch.float64)
    final = ts.integrate(system=state, model=cu_model.to_torch_sim(), integrator=ts.nvt_langevin,
                         n_steps=30, temperature=300.0, timestep=0.002)  # 2 fs, torch-sim's ps
    assert torch.isfinite(final.positions).all() and torch.isfinite(final.energy).all()
    assert (final.positions - state.positions).norm(dim=1).max() > 1e-3  # the atoms moved
    temperature = ts.calc_kT(masses=final.masses, momenta=final.momenta, system_idx=final.system_idx) / ts.units.MetalUnits.temperature
    assert torch.all(temperature < 3000), temperature
