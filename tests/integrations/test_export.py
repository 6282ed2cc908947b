"""``model.export(path)``: a TorchScript file that runs without this package and equals
``predict`` on molecules, bulk cells, slabs and cells smaller than twice the cutoff, for every
family, an EMA model and an ensemble; its neighbour list equals the training data's; bad input
gets errors naming the argument; a broken export is caught by the same comparison."""

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
from physicsml_like.integrations.export import neighbour_pairs
from physicsml_like.variants.ensemble import EnsembleModel

from .common import FAMILIES, KINDS, inputs, perturbed, predicted, saved, structure

# the saved fixtures were written under the old field names (tests/compat proves they still load)
pytestmark = [pytest.mark.filterwarnings("ignore:.*is now called:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")]


def _compare(exported: Any, model: Any, dtype: torch.dtype = torch.float64, tol: float = 1e-6,
             edges: bool = False) -> None:
    frames = [structure(model, kind) for kind in KINDS]
    expected = predicted(model, frames)
    for kind, atoms, want in zip(KINDS, frames, expected, strict=True):
        args = inputs(atoms, dtype)
        if edges:  # the caller's neighbour list, as an engine with its own would give it
            i, j, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
            out = exported(*args, torch.tensor(np.stack([i, j]), dtype=torch.long), torch.tensor(shifts, dtype=torch.long))
        else:
            out = exported(*args)
        assert np.abs(want["forces"]).max() > 2e-4, f"{kind}: forces all ~0, the comparison would prove nothing"
        assert abs(float(out["energy"]) - float(want["energy"])) < tol, kind
        np.testing.assert_allclose(out["forces"].double().numpy(), want["forces"], atol=tol, rtol=0, err_msg=kind)
        if "stress" in want and atoms.pbc.all():
            assert np.abs(want["stress"]).max() > 1e-5
            np.testing.assert_allclose(out["stress"].double().numpy(), want["stress"], atol=tol, rtol=0, err_msg=kind)
        else:
            assert "stress" not in out or not atoms.pbc.all()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_export_equals_predict(family: str, tmp_path: Path) -> None:
    model = perturbed(saved(FAMILIES[family]), seed=11, scale=0.02)
    path = model.export(tmp_path / f"{family}.pt")
    _compare(torch.jit.load(str(path)), model)


def test_float32_export_and_given_neighbour_list(tmp_path: Path) -> None:
    model = saved("painn_periodic")
    exported = torch.jit.load(str(model.export(tmp_path / "painn32.pt", dtype="float32")))
    _compare(exported, model, torch.float32, tol=1e-4)
    full = torch.jit.load(str(model.export(tmp_path / "painn64.pt")))
    _compare(full, model, edges=True)
    with pytest.raises(Exception, match="positions are float64 but this model was exported for float32"):
        exported(*inputs(structure(model, "bulk")))


def test_ema_weights_are_exported(tmp_path: Path) -> None:
    model = saved("mace_periodic")  # trained with EMA: predict uses the average
    with torch.no_grad():
        for parameter in model.module.ema_network.module.parameters():
            parameter.mul_(1.05)
    exported = torch.jit.load(str(model.export(tmp_path / "ema.pt")))
    _compare(exported, model)


def test_ensemble_exports_mean_and_spread(tmp_path: Path) -> None:
    ensemble = EnsembleModel(members=[saved("painn_periodic"), perturbed(saved("painn_periodic"), seed=5)])
    exported = torch.jit.load(str(ensemble.export(tmp_path / "ensemble.pt")))
    atoms = structure(ensemble.members[0], "bulk")
    want = ensemble.predict([atoms])
    out = exported(*inputs(atoms))
    assert abs(float(out["energy"]) - float(want["energy"][0])) < 1e-6
    np.testing.assert_allclose(out["forces"].numpy(), want["forces"][0], atol=1e-6)
    np.testing.assert_allclose(out["stress"].numpy(), want["stress"][0], atol=1e-6)
    assert float(want["energy_std"][0]) > 1e-4
    assert abs(float(out["energy_std"]) - float(want["energy_std"][0])) < 1e-6
    np.testing.assert_allclose(out["forces_std"].numpy(), want["forces_std"][0], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("self_interaction", [False, True])
def test_neighbour_list_has_the_training_edges(kind: str, self_interaction: bool) -> None:
    atoms = structure(saved("painn_periodic"), kind)
    i, j, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0, self_interaction)
    edges, got = neighbour_pairs(torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc),
                                 4.0, self_interaction)
    want = sorted(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist()), strict=True))
    have = sorted(zip(edges[0].tolist(), edges[1].tolist(), map(tuple, got.tolist()), strict=True))
    assert len(want) > len(atoms) and have == want


def test_runs_where_the_package_cannot_be_imported(tmp_path: Path) -> None:
    model = saved("nequip_molecule")
    path = model.export(tmp_path / "nequip.pt")
    atoms = structure(model, "molecule")
    np.save(tmp_path / "positions.npy", atoms.positions)
    np.save(tmp_path / "numbers.npy", atoms.numbers)
    script = f"""
import sys
sys.modules["physicsml_like"] = None  # any import of the package fails
import numpy as np, torch
model = torch.jit.load({str(path)!r})
out = model(torch.tensor(np.load({str(tmp_path / 'positions.npy')!r})), torch.tensor(np.load({str(tmp_path / 'numbers.npy')!r})),
            torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
print(repr(float(out["energy"])))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout.strip()) - float(predicted(model, [atoms])[0]["energy"])) < 1e-6


def test_bad_input_errors_name_the_argument(tmp_path: Path) -> None:
    model = saved("painn_periodic")
    exported = torch.jit.load(str(model.export(tmp_path / "painn.pt")))
    positions, numbers, cell, pbc = inputs(structure(model, "bulk"))
    cases = [
        ((positions[:, :2], numbers, cell, pbc), "positions must be"),
        ((positions, numbers[:-1], cell, pbc), "atomic_numbers must be"),
        ((positions, numbers.int(), cell, pbc), "atomic_numbers must be int64"),
        ((positions, torch.full_like(numbers, 8), cell, pbc), "atomic_numbers: element Z=8"),
        ((positions, numbers, cell[:2], pbc), "cell must be"),
        ((positions, numbers, cell, pbc[:2]), "pbc must be"),
        ((positions, numbers, torch.zeros(3, 3, dtype=torch.float64), pbc), "cell has zero volume"),
        ((positions, numbers, cell, torch.tensor([True, True, False]), None, None, True), "compute_stress=True needs"),
        ((positions, numbers, cell, pbc, torch.zeros(2, 3, dtype=torch.long)), "edge_index given without cell_shifts"),
        ((positions, numbers, cell, pbc, torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), "cell_shifts must be"),
    ]
    for args, message in cases:
        with pytest.raises(Exception, match=message):
            exported(*args)


def test_unexportable_models_are_refused_before_tracing(tmp_path: Path) -> None:
    model = saved("egnn_two_scalars")
    model.module.config.datamodule.graph_attrs_cols = ["charge"]
    with pytest.raises(ConfigError, match="graph attributes"):
        model.export(tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="format must be one of"):
        saved("painn_periodic").export(tmp_path / "y.pt", format="onnx")
    assert not list(tmp_path.iterdir())


def test_broken_export_fails_the_comparison(tmp_path: Path) -> None:
    """Mutation test: the same comparison on a neighbour list with one shift wrong and on one with
    a dropped edge must fail."""
    model = saved("painn_periodic")
    exported = torch.jit.load(str(model.export(tmp_path / "painn.pt")))
    atoms = structure(model, "small_cell")
    i, j, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    edges, shifts_t = torch.tensor(np.stack([i, j]), dtype=torch.long), torch.tensor(shifts, dtype=torch.long)
    want = predicted(model, [atoms])[0]

    def close(out: dict[str, torch.Tensor]) -> bool:
        return abs(float(out["energy"]) - float(want["energy"])) < 1e-6 and np.allclose(out["forces"].numpy(), want["forces"], atol=1e-6)

    assert close(exported(*inputs(atoms), edges, shifts_t))
    wrong_shift = shifts_t.clone()
    wrong_shift[0, 0] += 1
    assert not close(exported(*inputs(atoms), edges, wrong_shift))
    assert not close(exported(*inputs(atoms), edges[:, 1:], shifts_t[1:]))
