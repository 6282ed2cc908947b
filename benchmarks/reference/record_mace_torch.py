"""Record a mace-torch training run for ``benchmarks/reference_replay.py`` (runs in mace-torch's
own virtual environment).

Trains exactly as ``run_mace_torch.py`` does (same command line) and writes ``record.npz`` into
the job's folder (``_common.TrainingRecorder``), with the statistics mace-torch derived. The
result file holds the test errors of the final model, computed as ``run_mace_torch.py``
computes them.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from _common import (
    TrainingRecorder,
    prediction_errors,
    read_frames,
    read_job,
    set_threads,
    write_result,
)
from run_mace_torch import command_line, load, predict


def main() -> None:
    job = read_job()
    set_threads(job)
    recorder = TrainingRecorder([f.positions for f in read_frames(job["train"])])
    mace_train = importlib.import_module("mace.tools.train")
    take_step, one_epoch = mace_train.take_step, mace_train.train_one_epoch

    def recorded_step(model: Any, loss_fn: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
        if not recorder.started:
            recorder.start(
                model,
                scale=model.scale_shift.scale.detach().cpu().numpy(),
                atomic_energies=model.atomic_energies_fn.atomic_energies.detach().cpu().numpy(),
                avg_num_neighbours=float(model.interactions[0].avg_num_neighbors),
            )
        recorder.batch(batch.positions.detach().cpu().numpy(), batch.ptr.cpu().numpy())
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
