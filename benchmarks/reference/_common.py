"""What every runner of the reference comparison shares: reading a job, the data, timings, memory.

Imported by runners that live in different virtual environments, so it needs only the standard
library, numpy and ase (present in each) at import time; lightning is imported on demand.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ENERGY_KEY = "REF_energy"
"""Label names in the extended-XYZ files (info and per-atom arrays), so that no code mistakes
them for the results of a calculator."""
FORCES_KEY = "REF_forces"


def read_job() -> dict[str, Any]:
    """The job description: the JSON file named by the first command-line argument."""
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} JOB.json")
    return json.loads(Path(sys.argv[1]).read_text())


def set_threads(job: dict[str, Any]) -> None:
    """The same intra-op thread count and seeds for every code (OMP_NUM_THREADS is set by the
    caller, before any library reads it)."""
    import torch

    torch.set_num_threads(int(job["threads"]))
    torch.manual_seed(int(job["seed"]))
    np.random.seed(int(job["seed"]))


def read_frames(path: str) -> list[Any]:
    """Structures of one split with their labels as ``info``/``arrays`` entries."""
    import ase.io

    return list(ase.io.read(path, index=":"))


def labels(frames: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total energies ``[S]``, atom counts ``[S]`` and all forces stacked ``[sum N, 3]``."""
    energy = np.array([f.info[ENERGY_KEY] for f in frames], dtype=np.float64)
    atoms = np.array([len(f) for f in frames])
    forces = np.concatenate([f.arrays[FORCES_KEY] for f in frames]).astype(np.float64)
    return energy, atoms, forces


def prediction_errors(frames: list[Any], energy: Any, forces: Any) -> dict[str, float]:
    """Energy MAE per atom (meV/atom), total-energy MAE (meV) and force-component MAE (meV/Å)."""
    true_energy, atoms, true_forces = labels(frames)
    energy = np.asarray(energy, dtype=np.float64).reshape(-1)
    forces = np.asarray(forces, dtype=np.float64).reshape(-1, 3)
    if energy.shape != true_energy.shape or forces.shape != true_forces.shape:
        raise ValueError(f"predictions of shape {energy.shape}/{forces.shape} for labels {true_energy.shape}/{true_forces.shape}")
    return {
        "energy_mae_meV_per_atom": float(np.mean(np.abs(energy - true_energy) / atoms)) * 1000,
        "energy_mae_meV": float(np.mean(np.abs(energy - true_energy))) * 1000,
        "forces_mae_meV_per_A": float(np.mean(np.abs(forces - true_forces))) * 1000,
        "zero_force_mae_meV_per_A": float(np.mean(np.abs(true_forces))) * 1000,
    }


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (``VmHWM``: counts only pages of this
    program, not those of the parent that started it, unlike ``ru_maxrss`` after a fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Stopwatch:
    """Seconds spent in training epochs, validation excluded, one entry per epoch; and, where
    it can be observed, how many parameter values training changed."""

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.updated_parameters: int | None = None
        self._start: float | None = None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        if self._start is not None:
            self.epochs.append(time.perf_counter() - self._start)
            self._start = None


def time_lightning_epochs(stopwatch: Stopwatch) -> None:
    """Give every ``lightning.pytorch.Trainer`` made from now on a callback that times each
    training epoch up to its validation (or its end when it has none), and counts the parameter
    values that differ after training from before it.

    Both Lightning-based codes build their Trainer internally; adding the callback at
    construction leaves everything else as the code configured it. The count of changed values
    tells weights that reach the loss from weights that cannot: those get zero gradients, and
    Adam without weight decay never moves them.
    """
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        def on_train_start(self, trainer: Any, module: Any) -> None:
            self.initial = [p.detach().clone() for p in module.parameters() if p.requires_grad]

        def on_train_end(self, trainer: Any, module: Any) -> None:
            final = [p.detach() for p in module.parameters() if p.requires_grad]
            stopwatch.updated_parameters = int(sum((a != b).sum() for a, b in zip(self.initial, final, strict=True)))

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            stopwatch.start()

        def on_validation_start(self, trainer: Any, module: Any) -> None:
            if not trainer.sanity_checking:
                stopwatch.stop()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            stopwatch.stop()

    original = pl.Trainer.__init__

    def init_with_timer(self: Any, *args: Any, **kwargs: Any) -> None:
        callbacks = list(kwargs.pop("callbacks", None) or [])
        original(self, *args, callbacks=[*callbacks, EpochTimer()], **kwargs)

    pl.Trainer.__init__ = init_with_timer  # type: ignore[method-assign]


def training_numbers(job: dict[str, Any], stopwatch: Stopwatch, wall: float) -> dict[str, float]:
    """Throughput from the timed epochs: training structures per second of epoch time."""
    seconds = sum(stopwatch.epochs)
    return {
        "epochs_timed": len(stopwatch.epochs),
        "epoch_seconds": [round(s, 2) for s in stopwatch.epochs],
        "train_seconds": seconds,
        "train_structures_per_s": job["n_train"] * len(stopwatch.epochs) / seconds if seconds else float("nan"),
        "train_process_wall_s": wall,
        "peak_rss_gib": peak_rss_gib(),
        "updated_parameters": stopwatch.updated_parameters,
    }


def md_frames(job: dict[str, Any]) -> Any:
    """The starting structure of the MD timing: the first test structure, velocities drawn at
    ``job["md"]["temperature_K"]`` with a fixed seed."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = read_frames(job["test"])[0]
    atoms.info.pop(ENERGY_KEY, None)
    atoms.arrays.pop(FORCES_KEY, None)
    MaxwellBoltzmannDistribution(atoms, temperature_K=job["md"]["temperature_K"], rng=np.random.default_rng(job["seed"]))
    return atoms


def verlet_ms(atoms: Any, calculator: Any, steps: int, warmup: int) -> float:
    """Median milliseconds per ASE velocity-Verlet step of 1 fs from 300 K (Maxwell-Boltzmann,
    fixed seed), after ``warmup`` steps, on a copy of ``atoms`` (``benchmarks/md_step.py``)."""
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=300.0, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dynamics.run(warmup)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        dynamics.run(1)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def time_md(atoms: Any, job: dict[str, Any]) -> dict[str, float]:
    """Milliseconds per ASE velocity-Verlet step (median after warm-up steps), and the change
    of the total energy over the timed steps as a check that the dynamics is sound."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    md = job["md"]
    dynamics = VelocityVerlet(atoms, timestep=md["timestep_fs"] * units.fs)
    dynamics.run(md["warmup_steps"])
    start_energy = atoms.get_total_energy()
    steps = []
    for _ in range(md["steps"]):
        start = time.perf_counter()
        dynamics.run(1)
        steps.append(time.perf_counter() - start)
    return {
        "md_ms_per_step": float(np.median(steps)) * 1000,
        "md_ms_per_step_p90": float(np.percentile(steps, 90)) * 1000,
        "md_steps": len(steps),
        "md_final_temperature_K": float(atoms.get_temperature()),
        "md_total_energy_change_meV_per_atom": float(atoms.get_total_energy() - start_energy) / len(atoms) * 1000,
        "peak_rss_gib": peak_rss_gib(),
    }


def write_result(job: dict[str, Any], result: dict[str, Any]) -> None:
    """The runner's numbers, as JSON at ``job["result"]``."""
    result = {"threads": job["threads"], "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), **result}
    Path(job["result"]).write_text(json.dumps(result, indent=1))


class TrainingRecorder:
    """Notes a training run so that another code can replay it: the initial state dict, the
    names of the trainable parameters, the training structures of every epoch in batch order
    (indices into the training split) and the trainable weights after every epoch.

    A reference code's batches carry no structure index, so each structure is found again by
    its positions. ``save`` writes ``record.npz``, read by ``benchmarks/reference_replay.py``.
    """

    def __init__(self, train_positions: list[np.ndarray]) -> None:
        self.first_atoms = np.stack([p[0] for p in train_positions])
        self.train_positions = train_positions
        self.arrays: dict[str, np.ndarray] = {}
        self.epoch_order: list[int] = []
        self.orders: list[list[int]] = []

    @property
    def started(self) -> bool:
        return bool(self.arrays)

    def start(self, model: Any, **statistics: float | np.ndarray) -> None:
        """The weights before the first step, and the normalisation the code derived or was given."""
        self.arrays.update({f"initial:{k}": v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()})
        trainable = [name for name, p in model.named_parameters() if p.requires_grad]
        self.arrays["trainable"] = np.array(json.dumps(trainable))
        self.arrays.update({name: np.asarray(value, dtype=np.float64) for name, value in statistics.items()})

    def index_of(self, positions: np.ndarray) -> int:
        """The training structure with these positions."""
        index = int(np.argmin(np.abs(self.first_atoms - positions[0]).sum(axis=1)))
        if not np.allclose(self.train_positions[index], positions, atol=1e-4):
            raise RuntimeError("a training batch holds a structure not found in the training split")
        return index

    def batch(self, positions: np.ndarray, ptr: np.ndarray) -> None:
        """One training batch: all its atoms' positions and where each structure starts."""
        positions = np.asarray(positions, dtype=np.float64)
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
