"""The command line as a new user meets it: version, the families and their options, the YAML
keys of ``train``, and the demo's progress and table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from physicsml_like._version import __version__
from physicsml_like.cli import main


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"physicsml-like {__version__}"


def test_models_lists_every_family_and_one_family_options(capsys: pytest.CaptureFixture) -> None:
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    for name in ("egnn_model", "mace_model", "nequip_model", "allegro_model", "ani_model", "tensornet_model", "painn_model"):
        assert re.search(rf"^  {name} +\S", listing, flags=re.MULTILINE), name
    assert main(["models", "mace_model"]) == 0
    options = capsys.readouterr().out
    assert re.search(r"^  hidden_irreps: str = '[^']+'\n      \S", options, flags=re.MULTILINE)
    assert "  trainer:" not in options  # shared sections only with --all
    assert main(["models", "mace_model", "--all"]) == 0
    assert "  trainer:" in capsys.readouterr().out
    assert main(["models", "mace_modle"]) == 2
    assert "did you mean 'mace_model'" in capsys.readouterr().err


def test_train_help_names_the_yaml_keys(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for key in ("name", "config", "train_data", "validation_data", "test_data", "ckpt_path", "save_to"):
        assert re.search(rf"^  {key} +\S", text, flags=re.MULTILINE), key


def test_demo_prints_each_epoch_then_the_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--epochs", "1", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("graphs built in") == 2 and out.count("epoch  1/1  loss") == 2
    rows = re.findall(r"^(ethanol|copper).*?(\d+\.\d+) meV/atom +(\d+) meV/Å +(\d+) meV/Å", out, flags=re.MULTILINE)
    assert [r[0] for r in rows] == ["ethanol", "copper"]
    for _, energy, forces, zero_force in rows:
        assert float(energy) > 0 and 0 < int(forces) < int(zero_force)  # one epoch already beats zero forces
