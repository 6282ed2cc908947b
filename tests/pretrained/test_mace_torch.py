"""mace-torch models convert exactly into this package's MACE (mace-torch itself is never imported).

The fixtures under ``mace_torch/`` were written in mace-torch's environment by
``make_mace_torch_fixtures.py``: three models with MACE-MP-0's structure (89 elements,
``max_ell`` 3, correlation 3, the radial MLP and readouts of MACE-MP-0, fewer channels),
exported by ``physicsml_like/pretrained/mace_torch_export.py``, and mace-torch's
``MACECalculator`` energies, forces and stress (float64) of five structures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ase import Atoms

from physicsml_like import ConfigError, SavedModelError, load_model
from physicsml_like.pretrained import from_mace_torch, mace_torch

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "mace_torch"
MODELS = ("small", "medium", "plain")
MACE_PYTHON = HERE.parents[1] / "benchmarks" / "_work" / "venv-mace" / "bin" / "python"
TOLERANCE = {"energy_per_atom": 1e-5, "forces": 1e-4, "stress": 1e-5}
"""eV/atom, eV/Å, eV/Å³; float64 conversions agree to ~1e-15."""


def _reference() -> dict[str, Any]:
    return json.loads((FIXTURES / "reference.json").read_text())


def _frames() -> dict[str, Atoms]:
    return {key: Atoms(numbers=s["numbers"], positions=s["positions"], cell=s["cell"], pbc=s["pbc"])
            for key, s in _reference()["structures"].items()}


def _differences(model: Any, name: str) -> dict[str, dict[str, float]]:
    """Largest differences to mace-torch per structure, through the ASE calculator."""
    calculator = model.to_ase_calculator(dtype="float64")
    out = {}
    for key, atoms in _frames().items():
        expected = _reference()["results"][name][key]
        atoms.calc = calculator
        diff = {"energy_per_atom": abs(atoms.get_potential_energy() - expected["energy"]) / len(atoms),
                "forces": float(np.abs(atoms.get_forces() - np.asarray(expected["forces"])).max())}
        if "stress" in expected:
            diff["stress"] = float(np.abs(atoms.get_stress(voigt=False) - np.asarray(expected["stress"])).max())
        out[key] = diff
    return out


def test_the_fixtures_are_not_trivial() -> None:
    reference = _reference()
    numbers = {key: s["numbers"] for key, s in reference["structures"].items()}
    for name in MODELS:
        hyper = json.loads((FIXTURES / name / "mace_torch.json").read_text())["hyperparameters"]
        assert len(hyper["atomic_numbers"]) == 89 and hyper["max_ell"] == 3 and hyper["correlation"] == [3, 3]
        e0 = dict(zip(hyper["atomic_numbers"], hyper["atomic_energies"], strict=True))
        per_atom = []
        for key, result in reference["results"][name].items():
            interaction = result["energy"] - sum(e0[z] for z in numbers[key])
            assert abs(interaction) > 1e-3, f"{name}/{key}: the energy is the E0s alone"
            per_atom.append(abs(interaction) / len(numbers[key]))
            assert np.abs(result["forces"]).max() > 0.2, f"{name}/{key}: forces near zero"
            if "stress" in result:
                assert np.abs(result["stress"]).max() > 0.01, f"{name}/{key}: stress near zero"
        assert max(per_atom) > 0.05, f"{name}: interaction energies of a few meV per atom"
    assert {"small_cell"} <= set(numbers) and max(np.linalg.norm(reference["structures"]["small_cell"]["cell"], axis=1)) < 6.0


@pytest.mark.parametrize("name", MODELS)
def test_converted_model_predicts_what_mace_torch_does(name: str) -> None:
    model = from_mace_torch(FIXTURES / name)
    for key, diff in _differences(model, name).items():
        for quantity, value in diff.items():
            assert value < TOLERANCE[quantity], f"{name}/{key}: {quantity} differs by {value:.2e}"


def test_predict_batches_give_the_same_as_mace_torch(tmp_path: Path) -> None:
    model = from_mace_torch(FIXTURES / "medium", trainer={"default_root_dir": str(tmp_path)})
    frames = _frames()
    predicted = model.predict(list(frames.values()))
    for index, key in enumerate(frames):
        expected = _reference()["results"]["medium"][key]
        assert abs(predicted["energy"][index] - expected["energy"]) / len(frames[key]) < TOLERANCE["energy_per_atom"]
        assert np.abs(predicted["forces"][index] - np.asarray(expected["forces"])).max() < TOLERANCE["forces"]


def test_a_mis_mapped_tensor_breaks_the_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """The element-dependent skip weights read without moving the element axis (the mistake the
    mapping exists to avoid) give another model, which the comparison catches."""

    def untransposed(ours: Any, flat: torch.Tensor, name: str) -> None:
        start = 0
        for weight in ours.weights:
            mace_torch._copy(weight, flat[start : start + weight.numel()].reshape(weight.shape), name)
            start += weight.numel()

    monkeypatch.setattr(mace_torch, "_element_linear", untransposed)
    worst = max(d["forces"] for d in _differences(from_mace_torch(FIXTURES / "small"), "small").values())
    assert worst > 100 * TOLERANCE["forces"]


def test_converted_model_saves_loads_and_fine_tunes(tmp_path: Path) -> None:
    model = from_mace_torch(FIXTURES / "small", dtype="float32", trainer={"max_epochs": 1, "default_root_dir": str(tmp_path)},
                            optimizer={"name": "Adam", "config": {"lr": 1e-3}}, datamodule={"train": {"batch_size": 2}})
    loaded = load_model(model.save(tmp_path / "saved"))
    frames = list(_frames().values())
    before = model.predict(frames)
    np.testing.assert_allclose(loaded.predict(frames)["energy"], before["energy"], rtol=0, atol=1e-9)
    reference = _reference()["results"]["small"]
    labelled = []
    for atoms, result in zip(frames, reference.values(), strict=True):
        atoms = atoms.copy()
        atoms.info["energy"] = result["energy"] + 0.1 * len(atoms)  # labels the model does not fit yet
        atoms.arrays["forces"] = np.asarray(result["forces"])
        labelled.append(atoms)
    start = {k: v.detach().clone() for k, v in model.module.network.state_dict().items()}
    model.train(labelled[:4], validation_data=labelled[4:])
    after = model.module.network.state_dict()
    moved = [k for k in start if start[k].is_floating_point() and not torch.equal(start[k], after[k])]
    assert moved, "fine-tuning changed no weight"
    # it started from mace-torch's weights: one small epoch moves them a little, not to a new draw
    for k in moved:
        assert float((after[k] - start[k]).norm()) < 0.2 * float(start[k].norm()) + 1e-3, k


def _edited_export(tmp_path: Path, **changes: Any) -> Path:
    folder = tmp_path / "edited"
    shutil.copytree(FIXTURES / "small", folder)
    meta = json.loads((folder / "mace_torch.json").read_text())
    meta["hyperparameters"].update(changes)
    (folder / "mace_torch.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(("option", "value"), [
    ("distance_transform", "AgnesiTransform"),
    ("pair_repulsion", True),
    ("radial_type", "GaussianBasis"),
    ("heads", ["mp", "omat"]),
    ("interaction_classes", ["RealAgnosticDensityInteractionBlock", "RealAgnosticResidualInteractionBlock"]),
    ("model_class", "AtomicDipolesMACE"),
    ("product_irreps", ["16x0e", "16x0e+16x1o"]),
])
def test_an_option_with_no_counterpart_is_refused_by_name(tmp_path: Path, option: str, value: Any) -> None:
    words = {"interaction_classes": "interaction class", "product_irreps": "product irreps", "model_class": "model class"}
    with pytest.raises(ConfigError, match=words.get(option, option)):
        from_mace_torch(_edited_export(tmp_path, **{option: value}))


def test_a_folder_that_is_not_a_converted_model_says_so(tmp_path: Path) -> None:
    with pytest.raises(SavedModelError, match="not a converted mace-torch model"):
        from_mace_torch(tmp_path)
    folder = _edited_export(tmp_path)
    meta = json.loads((folder / "mace_torch.json").read_text())
    (folder / "mace_torch.json").write_text(json.dumps({**meta, "format": "something else"}))
    with pytest.raises(SavedModelError, match="format"):
        from_mace_torch(folder)


def test_a_model_file_without_a_mace_torch_python_explains_the_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = tmp_path / "mace.model"
    model_file.write_bytes(b"not read here")
    monkeypatch.delenv(mace_torch.PYTHON_VARIABLE, raising=False)
    with pytest.raises(ConfigError, match=mace_torch.PYTHON_VARIABLE) as error:
        from_mace_torch(model_file)
    assert str(mace_torch.EXPORT_SCRIPT) in str(error.value)
    # this package's own Python has no mace-torch: the export script says so
    with pytest.raises(ConfigError, match="mace-torch is not installed"):
        from_mace_torch(model_file, python=sys.executable)


@pytest.mark.slow
@pytest.mark.skipif(not MACE_PYTHON.exists(), reason="needs benchmarks/_work/venv-mace (reference_comparison.py --install-only)")
def test_a_model_file_converts_through_mace_torch_python(tmp_path: Path) -> None:
    """The whole path: a ``.model`` file (rebuilt with the fixture's seed in mace-torch's
    environment) handed to ``from_mace_torch`` with that environment's Python."""
    model_file = tmp_path / "small.model"
    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); import make_mace_torch_fixtures as m; "
            "torch.set_default_dtype(torch.float64); torch.save(m.build('small', 0), sys.argv[2])")
    subprocess.run([str(MACE_PYTHON), "-c", code, str(HERE), str(model_file)], check=True, capture_output=True)
    model = from_mace_torch(model_file, python=MACE_PYTHON, output=tmp_path / "export")
    assert (tmp_path / "export" / "mace_torch.json").is_file()
    for key, diff in _differences(model, "small").items():
        assert diff["forces"] < TOLERANCE["forces"], key
