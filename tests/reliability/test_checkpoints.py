"""Checkpoints under faults: ``last.ckpt`` is always the newest epoch, a run killed with SIGKILL
(mid-epoch or while writing a checkpoint) resumes bit-identically with its whole metrics history,
and a checkpoint carrying pickled code is refused even when the environment asks torch not to."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from physicsml_like import EGNNModel
from physicsml_like.errors import SavedModelError
from physicsml_like.training import trainer as trainer_module
from physicsml_like.training.trainer import AtomicCheckpointIO, build_trainer

from .common import ethanol_split, run_script, tiny_fields


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> EGNNModel:
    """The uninterrupted 4-epoch run the interrupted ones must reproduce."""
    train, val = ethanol_split()
    return EGNNModel(tiny_fields(tmp_path_factory.mktemp("straight"))).train(train, val)


def _same_weights(a: EGNNModel, b: EGNNModel) -> None:
    left, right = a.module.state_dict(), b.module.state_dict()
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


def _epoch_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


@pytest.mark.parametrize("callback", ["ours", "lightning"])
def test_last_checkpoint_is_the_newest_epoch_when_the_best_was_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, callback: str
) -> None:
    if callback == "lightning":  # Lightning's own callback: the check below must catch it
        monkeypatch.setattr(trainer_module, "NewestLastCheckpoint", trainer_module.ModelCheckpoint)
    train, val = ethanol_split()
    # ranking by the highest validation loss makes the first epoch the best one
    fields = tiny_fields(tmp_path, epochs=4, checkpoint={"monitor": "val/loss", "mode": "max"})
    model = EGNNModel(fields).train(train, val)
    checkpoints = model.run_dir / "checkpoints"
    assert [_epoch_of(p) for p in checkpoints.glob("best-*.ckpt")] == [0]
    if callback == "lightning":
        assert _epoch_of(checkpoints / "last.ckpt") == 0, "Lightning's last.ckpt lags behind"
        return
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (3, model.trainer.global_step)
    # continuing the finished run trains the two new epochs only
    more = EGNNModel(fields).train(train, val, ckpt_path="last", trainer_config={"max_epochs": 6})
    assert more.trainer.global_step == model.trainer.global_step // 4 * 6


def test_a_run_killed_mid_epoch_resumes_bit_identically_with_its_whole_history(tmp_path: Path, straight: EGNNModel) -> None:
    killed = run_script("killed_training.py", tmp_path, "mid_epoch")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = tmp_path / "egnn_model" / "version_0"
    assert _epoch_of(run / "checkpoints" / "last.ckpt") == 1, "the newest completed epoch"
    train, val = ethanol_split()
    resumed = EGNNModel(tiny_fields(tmp_path)).train(train, val, ckpt_path="last")
    assert resumed.run_dir == run and resumed.trainer.current_epoch == 4
    _same_weights(resumed, straight)
    # metrics.csv holds every epoch once, before and after the restart, as the straight run logged them
    history, reference = pd.read_csv(run / "metrics.csv"), pd.read_csv(straight.run_dir / "metrics.csv")
    assert sorted(history.dropna(subset=["val/loss"])["epoch"]) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(history, reference)


def test_a_run_killed_while_writing_a_checkpoint_resumes_and_its_leftover_goes(tmp_path: Path, straight: EGNNModel) -> None:
    killed = run_script("killed_training.py", tmp_path, "mid_save")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoints = tmp_path / "egnn_model" / "version_0" / "checkpoints"
    leftovers = list(checkpoints.glob(".last.ckpt.tmp-*"))
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"half a checkpoint"
    assert _epoch_of(checkpoints / "last.ckpt") == 0, "the previous last.ckpt is intact"
    train, val = ethanol_split()
    resumed = EGNNModel(tiny_fields(tmp_path)).train(train, val, ckpt_path="last")
    assert not list(checkpoints.glob(".*.tmp-*")), "the dead writer's temporary is removed"
    _same_weights(resumed, straight)


class _Payload:
    """Pickles to a call of ``os.mkdir(marker)``: loading it with pickle runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_checkpoint_with_pickled_code_never_runs_whatever_the_environment_says(
    tmp_path: Path, straight: EGNNModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "code-ran"
    checkpoint = torch.load(straight.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    checkpoint["extra"] = _Payload(marker)
    poisoned = tmp_path / "poisoned.ckpt"
    torch.save(checkpoint, poisoned)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # what importing mace-torch does
    # the payload is live: torch's default load runs it under this variable
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        torch.load(poisoned, map_location="cpu")
    assert marker.exists()
    marker.rmdir()

    train, val = ethanol_split()
    with pytest.raises(SavedModelError, match="refused") as err:
        EGNNModel(tiny_fields(tmp_path)).train(train, val, ckpt_path=poisoned)
    assert str(poisoned) in str(err.value) and err.value.file == poisoned
    # Lightning's own resume path reads through the same plugin, even when asked not to be safe
    trainer = build_trainer(straight.config, tmp_path / "run", has_validation=True)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    with pytest.raises(SavedModelError, match="refused"):
        trainer.strategy.checkpoint_io.load_checkpoint(poisoned, weights_only=False)
    assert not marker.exists()


def test_a_damaged_checkpoint_is_an_error_naming_it(tmp_path: Path, straight: EGNNModel) -> None:
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((straight.run_dir / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    train, val = ethanol_split()
    with pytest.raises(SavedModelError, match="not a readable checkpoint") as err:
        EGNNModel(tiny_fields(tmp_path)).train(train, val, ckpt_path=truncated)
    assert err.value.file == truncated and str(truncated) in str(err.value)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(SavedModelError, match="not a checkpoint of this package") as err:
        EGNNModel(tiny_fields(tmp_path)).train(train, val, ckpt_path=foreign)
    assert err.value.field == "physicsml_like"
