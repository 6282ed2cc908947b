"""The command line: train from YAML, predict from a saved model, clear errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import ase.io
import pandas as pd
import pytest
import yaml

from physicsml_like.cli import main

from .helpers import tiny_egnn


def test_train_then_predict_from_the_command_line(tmp_path: Path, ethanol, capsys: pytest.CaptureFixture) -> None:
    ase.io.write(tmp_path / "train.extxyz", ethanol[:24])
    ase.io.write(tmp_path / "test.extxyz", ethanol[30:36])
    spec = {
        "name": "egnn_model",
        "config": tiny_egnn(tmp_path / "runs", epochs=1),
        "train_data": "train.extxyz",
        "test_data": "test.extxyz",
        "save_to": "saved",
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec))
    assert main(["train", str(tmp_path / "run.yaml")]) == 0
    printed = capsys.readouterr().out
    assert "test/forces_mae" in printed and "saved to" in printed
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(tmp_path / "saved"), str(tmp_path / "test.extxyz"), "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 6 and {"energy", "forces"} <= set(frame.columns)
    assert len(json.loads(frame["forces"][0])) == 9  # one [x, y, z] per atom


def test_bad_config_gives_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"name": "egnn_model", "config": {"c_hiden": 3}, "train_data": "x.xyz"}))
    assert main(["train", str(tmp_path / "bad.yaml")]) == 2
    assert "c_hiden" in capsys.readouterr().err


def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("name: egnn_model\nconfig:\n  c_hidden: [16\ntrain_data: x.xyz\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(config) in err
    assert re.search(r"line \d+, column \d+", err), err


def test_predict_checks_the_output_before_predicting(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from physicsml_like.training import wrapper

    monkeypatch.setattr(wrapper, "load_model", lambda path: pytest.fail("predicted before checking -o"))
    missing = tmp_path / "no-such-folder" / "predictions.csv"
    assert main(["predict", str(tmp_path), "data.xyz", "-o", str(missing)]) == 2
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "data.xyz", "-o", str(tmp_path / "predictions.txt")]) == 2
    assert "suffix must be one of" in capsys.readouterr().err


def test_predict_writes_only_its_output(tmp_path: Path, ethanol, monkeypatch: pytest.MonkeyPatch) -> None:
    from physicsml_like import EGNNModel

    cache = tmp_path / "train-cache"
    fields = tiny_egnn(tmp_path / "runs", epochs=1, datamodule={"pre_batch": "on_disk", "cache_dir": str(cache)})
    EGNNModel(fields).train(ethanol[:16]).save(tmp_path / "saved")
    shutil.rmtree(tmp_path / "runs")
    shutil.rmtree(cache)
    ase.io.write(tmp_path / "test.extxyz", ethanol[30:36])
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["predict", str(tmp_path / "saved"), str(tmp_path / "test.extxyz"), "-o", "out.json"]) == 0
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert set(after) - set(before) == {Path("work/out.json")}, "the saved config's cache_dir and runs stay untouched"
    assert len(json.loads((work / "out.json").read_text())) == 6
