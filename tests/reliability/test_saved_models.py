"""Saved model folders under damage: checksums catch changed bytes, and every error names the
file and the field; folders saved before checksums existed still load."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from physicsml_like import EGNNModel, load_model
from physicsml_like.errors import SavedModelError

from .common import ethanol_split, tiny_fields


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, _ = ethanol_split()
    root = tmp_path_factory.mktemp("saved")
    model = EGNNModel(tiny_fields(root, epochs=1)).train(train[:16])
    return model.save(root / "model")


def _edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        change(data)
        (folder / name).write_text(json.dumps(data))

    return edit


def _flip_bytes(folder: Path) -> None:
    weights = folder / "weights.safetensors"
    raw = bytearray(weights.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 256] = bytes(b ^ 0xFF for b in raw[middle : middle + 256])
    weights.write_bytes(bytes(raw))


def _truncate(name: str) -> Callable[[Path], None]:
    def cut(folder: Path) -> None:
        (folder / name).write_bytes((folder / name).read_bytes()[:100])

    return cut


def _add_element(meta: dict) -> None:
    meta["element_mapping"]["elements"].append(7)


# (damage, keep the checksums?, file at fault, field at fault, words of the message)
CASES = {
    "flipped weights": (_flip_bytes, True, "weights.safetensors", None, "damaged or edited"),
    "truncated weights": (_truncate("weights.safetensors"), False, "weights.safetensors", None, "not a readable safetensors"),
    "missing weights": (lambda f: (f / "weights.safetensors").unlink(), False, "weights.safetensors", None, "missing"),
    "edited config": (_edit_json("config.json", lambda c: c["config"].update(c_hidden=17)), True, "config.json", None, "damaged or edited"),
    "config not JSON": (_truncate("config.json"), False, "config.json", None, "not valid JSON (line"),
    "unknown config field": (_edit_json("config.json", lambda c: c["config"].update(c_hiden=3)), False, "config.json", "config", "c_hiden"),
    "unknown family": (_edit_json("config.json", lambda c: c.update(name="egnn_modle")), False, "config.json", "name", "egnn_model"),
    "statistics field missing": (_edit_json("statistics.json", lambda s: s.pop("avg_num_neighbours")), False, "statistics.json", "avg_num_neighbours", "missing"),
    "metadata not JSON": (_truncate("metadata.json"), True, "metadata.json", None, "not valid JSON"),
    "element mapping changed": (_edit_json("metadata.json", _add_element), True, "metadata.json", "element_mapping", "maps 4 elements"),
    "spec missing": (_edit_json("metadata.json", lambda m: m.pop("spec")), True, "metadata.json", "spec", "missing"),
    "checksums damaged": (_edit_json("metadata.json", lambda m: m.update(sha256="0")), True, "metadata.json", "sha256", "sha256"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_folder_is_refused_naming_file_and_field(case: str, saved: Path, tmp_path: Path) -> None:
    damage, keep_checksums, file, field, words = CASES[case]
    folder = shutil.copytree(saved, tmp_path / "model")
    if not keep_checksums:  # as a model saved before checksums: the file's own check must speak
        _edit_json("metadata.json", lambda m: m.pop("sha256"))(folder)
    damage(folder)
    with pytest.raises(SavedModelError) as err:
        load_model(folder)
    assert err.value.file == folder / file and str(folder / file) in str(err.value)
    assert err.value.field == field
    assert words in str(err.value)


def test_an_intact_folder_loads_with_and_without_checksums(saved: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train, _ = ethanol_split()
    expected = load_model(saved).predict(train[:4])["energy"]
    assert set(json.loads((saved / "metadata.json").read_text())["sha256"]) == {"weights.safetensors", "config.json", "statistics.json"}
    old = shutil.copytree(saved, tmp_path / "old")
    _edit_json("metadata.json", lambda m: m.pop("sha256"))(old)
    with caplog.at_level(logging.INFO, logger="physicsml_like"):
        energies = load_model(old).predict(train[:4])["energy"]
    assert "without checksums" in caplog.text
    np.testing.assert_array_equal(energies, expected)
    # without checksums, flipped weights load silently and predict something else: what they guard
    _flip_bytes(old)
    assert not np.allclose(load_model(old).predict(train[:4])["energy"], expected)
