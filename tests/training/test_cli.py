"""The command line: train from YAML, predict from a saved model, clear errors."""

from __future__ import annotations

import json
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
