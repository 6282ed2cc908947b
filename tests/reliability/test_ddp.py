"""Two-process DDP (CPU, gloo): the user's code after ``train()`` runs on both ranks. ``save``
leaves one good folder, ``predict``, ``test`` and the calculator give both ranks the same
result, and a rank that fails afterwards makes the command fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physicsml_like import load_model
from physicsml_like.datasets import load_dataset

from .common import run_script


def test_save_predict_test_and_calculator_after_ddp_training(tmp_path: Path) -> None:
    done = run_script("ddp_after_train.py", tmp_path, timeout=600)
    assert done.returncode != 0, "rank 1 failed: the command must not exit 0"
    assert "rank 1 fails on purpose" in done.stderr, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1], "both ranks got the same results"
    # one complete folder, no temporaries beside it, and it predicts what both ranks predicted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "rank0.json", "rank1.json", "runs"]
    energies = load_model(tmp_path / "model").predict(load_dataset("ethanol")[40:46])["energy"]
    np.testing.assert_allclose(energies, ranks[0]["energy"], rtol=1e-6)
    assert ranks[0]["reloaded_energy"] == ranks[0]["energy"]
    np.testing.assert_allclose(ranks[0]["calculator_energy"], ranks[0]["energy"][0], rtol=1e-6)
    assert ranks[0]["test"]["test/energy_mae"] > 0
