"""Lightning's DDP on 2 CPU processes (gloo) gives the single-process result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from physicsml_like import EGNNModel
from physicsml_like.datasets import load_dataset

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"


def _run(out: Path, devices: int, batch_size: int) -> dict[str, torch.Tensor]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), str(devices), str(batch_size)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return load_file(str(out / "model" / "weights.safetensors"))


def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    # 2 ranks x 8 structures see exactly the global batches of 1 process x 16 (equal-sized
    # molecules, so the averaged gradients are the same): the weights agree to float tolerance
    ddp = _run(tmp_path / "ddp", devices=2, batch_size=8)
    single = _run(tmp_path / "single", devices=1, batch_size=16)
    assert ddp.keys() == single.keys()
    for key in ddp:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-6, msg=key)
    # and the comparison is sensitive: training moved the weights well beyond the tolerance
    saved = json.loads((tmp_path / "single" / "model" / "config.json").read_text())["config"]
    initial = EGNNModel(saved).initialise(load_dataset("ethanol")[:64]).module.network.state_dict()
    moved = max(float((single[k] - initial[k]).abs().max()) for k in single)
    assert moved > 100 * 1e-6, moved
    runs = list((tmp_path / "ddp" / "runs" / "egnn_model").iterdir())
    assert [r.name for r in runs] == ["version_0"], "both ranks use one run folder"
