"""Train this package's MACE or NequIP on one job of the reference comparison, or time molecular
dynamics with a model it trained (see ``benchmarks/reference_comparison.py``).

Runs with this package's Python and the repository on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ENERGY_KEY,
    FORCES_KEY,
    Stopwatch,
    md_frames,
    prediction_errors,
    read_frames,
    read_job,
    set_threads,
    time_lightning_epochs,
    time_md,
    training_numbers,
    write_result,
)


def labelled(frames: list[Any]) -> list[Any]:
    """The frames with their labels where this package reads them (the calculator's results)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=float(frame.info[ENERGY_KEY]), forces=frame.arrays[FORCES_KEY])
        out.append(atoms)
    return out


def build_model(job: dict[str, Any]) -> Any:
    """The untrained model of a job, configured as the comparison trains it."""
    from physicsml_like.models import MACEModel, NequIPModel

    family = {"mace": MACEModel, "nequip": NequIPModel}[job["family"]]
    batch = {"batch_size": job["batch_size"]}
    return family(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": job["cutoff"],
                    "train": batch, "validation": batch, "predict": batch},
        compute_forces=True,
        **job["architecture"],  # the job names hyperparameters as this package does
        losses={"energy": {"per_atom": False, "weight": job["energy_weight"]}, "forces": {"weight": job["forces_weight"]}},
        optimizer={"name": "Adam", "config": {"lr": job["lr"], "amsgrad": True}},
        scheduler=None,
        seed=job["seed"],
        compile_training=job.get("compile_training", False),
        trainer={"max_epochs": job["epochs"], "default_root_dir": job["workdir"], "enable_progress_bar": False},
    )


def train(job: dict[str, Any]) -> None:
    stopwatch = Stopwatch()
    time_lightning_epochs(stopwatch)
    train_frames, validation, test = (labelled(read_frames(job[split])) for split in ("train", "validation", "test"))
    model = build_model(job)
    start = time.perf_counter()
    model.train(train_frames, validation)
    compile_epoch = None
    if job.get("compile_training"):  # the first epoch records and compiles the step: timed apart
        compile_epoch = stopwatch.epochs.pop(0)
    result = training_numbers(job, stopwatch, time.perf_counter() - start)
    if compile_epoch is not None:
        result["compile_epoch_seconds"] = round(compile_epoch, 2)
    result["parameters"] = sum(p.numel() for p in model.module.network.parameters() if p.requires_grad)

    start = time.perf_counter()
    predictions = model.predict(test)
    result["predict_structures_per_s"] = len(test) / (time.perf_counter() - start)
    result.update(prediction_errors(test, predictions["energy"], np.concatenate(predictions["forces"])))
    model.save(Path(job["workdir"]) / "model")
    result["code"] = "ours"
    write_result(job, result)


def with_stress(saved: Path) -> Path:
    """A copy of a saved model that also predicts the stress (the strain derivative of the
    same energy, so the weights are unchanged): the work mace-torch's calculator does at
    every step."""
    copy = saved.with_name(saved.name + "_with_stress")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(saved, copy)
    config = json.loads((copy / "config.json").read_text())
    config["config"]["compute_stress"] = True
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def molecular_dynamics(job: dict[str, Any]) -> None:
    from physicsml_like import load_model

    saved = Path(job["trained_workdir"]) / "model"
    result: dict[str, Any] = {"code": "ours", "md_dtype": job["md"]["dtype"]}
    for label, path in (("forces", saved), ("forces_stress", with_stress(saved))):
        atoms = md_frames(job)
        atoms.calc = load_model(path).to_ase_calculator(dtype=job["md"]["dtype"])
        timing = time_md(atoms, job)
        result.update({f"{key}[{label}]": value for key, value in timing.items()})
    result["peak_rss_gib"] = timing["peak_rss_gib"]
    write_result(job, result)


def main() -> None:
    job = read_job()
    set_threads(job)
    {"train": train, "md": molecular_dynamics}[job["task"]](job)


if __name__ == "__main__":
    main()
