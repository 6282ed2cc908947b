"""Record a physicsml training run for ``benchmarks/reference_replay.py`` (runs in physicsml's
own virtual environment).

Trains exactly as ``run_physicsml.py`` does and writes ``record.npz`` into the job's folder
(``_common.TrainingRecorder``) besides that runner's result. physicsml forms its training batches
once (``pre_batch="in_memory"``) and shuffles only their order between epochs; the record holds
what each epoch actually trained on, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _common import TrainingRecorder, read_frames, read_job


def main() -> None:
    job = read_job()
    recorder = TrainingRecorder([f.positions for f in read_frames(job["train"])])
    from physicsml.lightning.module import PhysicsMLModuleBase

    step = PhysicsMLModuleBase._training_step_on_single_source_batch

    def recorded_step(self: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
        if not recorder.started:
            head = self.graph_scalars_head
            recorder.start(self, scale=float(head.scale_shift.scale),
                           avg_num_neighbours=float(self.mace.interactions[0].avg_num_neighbours))
        recorder.batch(batch.coordinates.detach().cpu().numpy(), batch.ptr.cpu().numpy())
        return step(self, batch, *args, **kwargs)

    def recorded_epoch_end(self: Any) -> None:
        recorder.epoch_end(self)

    PhysicsMLModuleBase._training_step_on_single_source_batch = recorded_step  # type: ignore[method-assign]
    PhysicsMLModuleBase.on_train_epoch_end = recorded_epoch_end  # type: ignore[method-assign]
    import run_physicsml

    run_physicsml.main()  # trains, predicts the test split and writes the result
    recorder.save(Path(job["workdir"]) / "record.npz")


if __name__ == "__main__":
    main()
