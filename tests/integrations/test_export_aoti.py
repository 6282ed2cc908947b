"""``model.export(path, format="aoti")``: an AOTInductor package that runs without this package
and equals ``predict`` on molecules, bulk cells, slabs and cells smaller than twice the cutoff.

CI records every family's graph (the step that meets the networks' code) and checks it against
``predict`` without compiling; it compiles one periodic model with stress and checks the package,
its metadata, its errors and a broken neighbour list. Compiling every family, float32, EMA and an
ensemble takes minutes and is marked slow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from physicsml_like.data.neighbours import neighbour_list
from physicsml_like.errors import ConfigError
from physicsml_like.integrations.aoti import compiled_potential, record
from physicsml_like.variants.ensemble import EnsembleModel

from .common import FAMILIES, KINDS, inputs, perturbed, predicted, saved, structure

pytestmark = [pytest.mark.filterwarnings("ignore:.*is now called:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

CUTOFF = 4.0  # every saved fixture's
# every family, and the one-element periodic fixtures' families again with three elements (MACE's
# product basis groups atoms by element, a size the recorded graph cannot branch on)
SAVED_MODELS = sorted({*FAMILIES.values(), "mace_molecule", "painn_molecule"})


def _edges(atoms: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The caller's neighbour list, as an engine with its own gives it (int64)."""
    i, j, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, CUTOFF)
    return torch.tensor(np.stack([i, j]), dtype=torch.long), torch.tensor(shifts, dtype=torch.long)


def _compare(run: Any, model: Any, dtype: torch.dtype = torch.float64, tol: float = 1e-6) -> None:
    frames = [structure(model, kind) for kind in KINDS]
    for kind, atoms, want in zip(KINDS, frames, predicted(model, frames), strict=True):
        out = run(*inputs(atoms, dtype), *_edges(atoms))
        assert np.abs(want["forces"]).max() > 2e-4, f"{kind}: forces all ~0, the comparison would prove nothing"
        assert abs(float(out["energy"]) - float(want["energy"])) < tol, kind
        np.testing.assert_allclose(out["forces"].double().numpy(), want["forces"], atol=tol, rtol=0, err_msg=kind)
        if "stress" in want and atoms.pbc.all():
            assert np.abs(want["stress"]).max() > 1e-5
            np.testing.assert_allclose(out["stress"].double().numpy(), want["stress"], atol=tol, rtol=0, err_msg=kind)


@pytest.mark.parametrize("name", SAVED_MODELS)
def test_recorded_graph_equals_predict(name: str) -> None:
    """The graph the package is compiled from (sizes symbolic, recorded on another structure)."""
    model = perturbed(saved(name), seed=11, scale=0.02)
    potential, example = compiled_potential(model, dtype="float64")
    _compare(record(potential, example).module(), model)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    model = perturbed(saved("painn_periodic"), seed=11, scale=0.02)
    return model, model.export(tmp_path_factory.mktemp("aoti") / "painn.pt2", format="aoti", dtype="float64")


def test_package_equals_predict_and_describes_itself(package: tuple[Any, Path]) -> None:
    model, path = package
    runner = torch._inductor.aoti_load_package(str(path))
    _compare(runner, model)
    meta = runner.get_metadata()
    assert meta["cutoff"] == "4.0" and meta["dtype"] == "float64" and meta["outputs"] == "energy, forces, stress"
    assert meta["inputs"] == "positions, atomic_numbers, cell, pbc, edge_index, cell_shifts"
    assert meta["elements"] == ",".join(map(str, model.module.element_mapping.elements))


def test_package_runs_where_this_package_cannot_be_imported(package: tuple[Any, Path], tmp_path: Path) -> None:
    model, path = package
    atoms = structure(model, "bulk")
    edges, shifts = _edges(atoms)
    arrays = {"positions": atoms.positions, "numbers": atoms.numbers, "cell": atoms.cell.array, "pbc": atoms.pbc,
              "edges": edges.numpy(), "shifts": shifts.numpy()}
    np.savez(tmp_path / "input.npz", **arrays)
    script = f"""
import sys
sys.modules["physicsml_like"] = None  # any import of the package fails
import numpy as np, torch
a = np.load({str(tmp_path / 'input.npz')!r})
run = torch._inductor.aoti_load_package({str(path)!r})
out = run(*(torch.from_numpy(a[k]) for k in ("positions", "numbers", "cell", "pbc", "edges", "shifts")))
print(repr(float(out["energy"])), repr(float(out["stress"].abs().max())))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    energy, stress = map(float, done.stdout.split())
    want = predicted(model, [atoms])[0]
    assert abs(energy - float(want["energy"])) < 1e-6 and abs(stress - np.abs(want["stress"]).max()) < 1e-6


def test_package_errors_name_the_argument(package: tuple[Any, Path]) -> None:
    model, path = package
    runner = torch._inductor.aoti_load_package(str(path))
    atoms = structure(model, "bulk")
    positions, numbers, cell, pbc = inputs(atoms)
    edges, shifts = _edges(atoms)
    outside = edges.clone()
    outside[1, 3] = len(atoms)
    cases = [
        ((positions.float(), numbers, cell, pbc, edges, shifts), "positions .input 0.: unmatched dtype"),
        ((positions, numbers.int(), cell, pbc, edges, shifts), "atomic_numbers .input 1.: unmatched dtype"),
        ((positions, numbers, cell[:2], pbc, edges, shifts), "cell .input 2.: unmatched dim value"),
        ((positions, numbers, cell, pbc, edges.int(), shifts), "edge_index .input 4.: unmatched dtype"),
        ((positions, torch.full_like(numbers, 8), cell, pbc, edges, shifts), "atomic_numbers: an element this model"),
        ((positions, numbers, cell, pbc, outside, shifts), "edge_index: an atom index outside"),
    ]
    for args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            runner(*args)
    assert float(runner(positions, numbers, cell, pbc, edges, shifts)["energy"]) != 0.0  # still usable


def test_broken_neighbour_list_fails_the_comparison(package: tuple[Any, Path]) -> None:
    """Mutation test: one shift wrong, or one edge dropped, must change the package's answer."""
    model, path = package
    runner = torch._inductor.aoti_load_package(str(path))
    atoms = structure(model, "small_cell")
    edges, shifts = _edges(atoms)
    want = predicted(model, [atoms])[0]

    def close(out: dict[str, torch.Tensor]) -> bool:
        return abs(float(out["energy"]) - float(want["energy"])) < 1e-6 and np.allclose(out["forces"].numpy(), want["forces"], atol=1e-6)

    assert close(runner(*inputs(atoms), edges, shifts))
    wrong = shifts.clone()
    wrong[0, 0] += 1
    assert not close(runner(*inputs(atoms), edges, wrong))
    assert not close(runner(*inputs(atoms), edges[:, 1:].contiguous(), shifts[1:].contiguous()))


def test_refused_before_compiling(tmp_path: Path) -> None:
    model = saved("painn_periodic")
    with pytest.raises(ConfigError, match="compiled for the CPU"):
        model.export(tmp_path / "x.pt2", format="aoti", device="cuda")
    unexportable = saved("egnn_two_scalars")
    unexportable.module.config.datamodule.graph_attrs_cols = ["charge"]
    with pytest.raises(ConfigError, match="graph attributes"):
        unexportable.export(tmp_path / "y.pt2", format="aoti")
    assert not list(tmp_path.iterdir())


def test_a_compiler_failure_is_named_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inductor's own error (here a made-up one) comes back as one line naming the format to use
    instead, and the half-written package is removed."""

    def fails(*args: Any, package_path: Any, **kwargs: Any) -> None:
        package_path.write(b"half a package")
        raise AssertionError("unbacked symbol u0 in bmm\n  (inductor's traceback)")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", fails)
    with pytest.raises(RuntimeError, match=r"could not compile this model \(AssertionError: unbacked symbol u0 in "
                       r"bmm\); use format='torchscript'"):
        saved("painn_periodic").export(tmp_path / "z.pt2", format="aoti")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------- compiled, every family
@pytest.mark.slow
@pytest.mark.parametrize("name", SAVED_MODELS)
def test_every_family_compiles_and_equals_predict(name: str, tmp_path: Path) -> None:
    model = perturbed(saved(name), seed=11, scale=0.02)
    path = model.export(tmp_path / f"{name}.pt2", format="aoti", dtype="float64")
    _compare(torch._inductor.aoti_load_package(str(path)), model)


@pytest.mark.slow
def test_float32_and_ema_package(tmp_path: Path) -> None:
    model = saved("mace_periodic")  # trained with EMA: predict uses the average
    with torch.no_grad():
        for parameter in model.module.ema_network.module.parameters():
            parameter.mul_(1.05)
    path = model.export(tmp_path / "mace32.pt2", format="aoti", dtype="float32")
    _compare(torch._inductor.aoti_load_package(str(path)), model, torch.float32, tol=1e-4)


@pytest.mark.slow
def test_ensemble_package_gives_mean_and_spread(tmp_path: Path) -> None:
    ensemble = EnsembleModel(members=[saved("painn_periodic"), perturbed(saved("painn_periodic"), seed=5)])
    runner = torch._inductor.aoti_load_package(str(ensemble.export(tmp_path / "ensemble.pt2", format="aoti")))
    atoms = structure(ensemble.members[0], "bulk")
    want = ensemble.predict([atoms])
    out = runner(*inputs(atoms), *_edges(atoms))
    assert float(want["energy_std"][0]) > 1e-4
    for key in ("energy", "energy_std"):
        assert abs(float(out[key]) - float(want[key][0])) < 1e-6, key
    for key in ("forces", "forces_std", "stress"):
        np.testing.assert_allclose(out[key].numpy(), want[key][0], atol=1e-6, err_msg=key)


def test_documented_ase_calculator_equals_the_package_calculator(package: tuple[Any, Path]) -> None:
    """The ASE calculator of docs/export.md (vesin's list) gives predict's energy, forces and
    stress in ASE's convention (the package's own calculator's)."""
    import re
    import textwrap

    model, path = package
    text = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "class CompiledCalculator" in b)
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(block), namespace)  # the documented code itself
    atoms = structure(model, "bulk")
    atoms.calc = namespace["CompiledCalculator"](str(path))
    reference = atoms.copy()
    reference.calc = model.to_ase_calculator(dtype="float64")
    assert abs(atoms.get_potential_energy() - reference.get_potential_energy()) < 1e-6
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-6, rtol=0)
    assert np.abs(reference.get_stress()).max() > 1e-5
    np.testing.assert_allclose(atoms.get_stress(), reference.get_stress(), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_self_check_refuses_a_package_with_a_size_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation test: with inductor's small-matmul decompositions left in, a one-element model's
    package accepts at most 16 atoms; the export's own check must refuse to write it."""
    import contextlib

    from physicsml_like.integrations import aoti

    model = saved("painn_periodic")
    assert len(model.module.element_mapping.elements) == 1
    monkeypatch.setattr(aoti, "_no_size_bounds_from_matmuls", contextlib.nullcontext)
    with pytest.raises(RuntimeError, match="compiled package refused a structure of 88 atoms"):
        model.export(tmp_path / "bounded.pt2", format="aoti")
    assert not list(tmp_path.iterdir())
