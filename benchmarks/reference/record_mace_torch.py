"""Record a mace-torch training run for ``benchmarks/mace_torch_replay.py`` (runs in mace-torch's
own virtual environment).

Trains exactly as ``run_mace_torch.py`` does (same command line) and writes ``record.npz`` into
the job's folder: the initial state dict, the names of the trainable parameters, the training
structures of every epoch in batch order (indices into the training split), the trainable
weights at the end of every epoch, and the statistics mace-torch derived. The result file holds
the test errors of the final model, computed as ``run_mace_torch.py`` computes them.
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import prediction_errors, read_frames, read_job, set_threads, write_result
from run_mace_torch import command_line, load, predict


class _Recorder:
    """Wraps mace-torch's ``take_step`` and ``train_one_epoch`` to note batches and weights."""

    def __init__(self, train_positions: list[np.ndarray]) -> None:
        self.first_atoms = np.stack([p[0] for p in train_positions])
        self.train_positions = train_positions
        self.arrays: dict[str, np.ndarray] = {}
        self.epoch_order: list[int] = []
        self.orders: list[list[int]] = []

    def index_of(self, positions: np.ndarray) -> int:
        """The training structure with these positions (mace-torch batches carry no index)."""
        index = int(np.argmin(np.abs(self.first_atoms - positions[0]).sum(axis=1)))
        if not np.allclose(self.train_positions[index], positions, atol=1e-4):
            raise RuntimeError("a training batch holds a structure not found in the training split")
        return index

    def step(self, model: Any, batch: Any) -> None:
        if not self.arrays:
            self.arrays.update({f"initial:{k}": v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()})
            trainable = [name for name, p in model.named_parameters() if p.requires_grad]
            self.arrays["trainable"] = np.array(json.dumps(trainable))
            self.arrays["scale"] = model.scale_shift.scale.detach().cpu().numpy()
            self.arrays["shift"] = model.scale_shift.shift.detach().cpu().numpy()
            self.arrays["atomic_energies"] = model.atomic_energies_fn.atomic_energies.detach().cpu().numpy()
            self.arrays["avg_num_neighbours"] = np.array(float(model.interactions[0].avg_num_neighbors))
        positions = batch.positions.detach().cpu().numpy().astype(np.float64)
        ptr = batch.ptr.cpu().numpy()
        self.epoch_order += [self.index_of(positions[a:b]) for a, b in itertools.pairwise(ptr)]

    def epoch_end(self, model: Any) -> None:
        epoch = len(self.orders)
        self.orders.append(self.epoch_order)
        self.epoch_order = []
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.arrays[f"epoch{epoch}:{name}"] = p.detach().cpu().numpy().copy()

    def save(self, path: Path) -> None:
        np.savez(path, order=np.array(self.orders, dtype=np.int64), **self.arrays)


def main() -> None:
    job = read_job()
    set_threads(job)
    train = read_frames(job["train"])
    recorder = _Recorder([f.positions for f in train])
    mace_train = importlib.import_module("mace.tools.train")
    take_step, one_epoch = mace_train.take_step, mace_train.train_one_epoch

    def recorded_step(model: Any, loss_fn: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.step(model, batch)
        return take_step(model, loss_fn, batch, *args, **kwargs)

    def recorded_epoch(*args: Any, **kwargs: Any) -> None:
        one_epoch(*args, **kwargs)
        recorder.epoch_end(kwargs["model"])

    mace_train.take_step = recorded_step
    mace_train.train_one_epoch = recorded_epoch
    from mace.cli import run_train

    sys.argv = ["mace_run_train", *command_line(job)]
    run_train.main()
    recorder.save(Path(job["workdir"]) / "record.npz")

    model = load(job, job["workdir"])
    test = read_frames(job["test"])
    energy, forces = predict(model, test, job["batch_size"])
    write_result(job, {"code": "mace-torch", **prediction_errors(test, energy, forces)})


if __name__ == "__main__":
    main()
