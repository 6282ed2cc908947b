"""This package's MACE and NequIP beside the mace-torch and physicsml packages, trained the same
way on the same data, side by side.

    python benchmarks/reference_comparison.py             # everything (60-100 min on 2 cores)
    python benchmarks/reference_comparison.py --quick     # plumbing check: small splits, 1 epoch (~6 min)
    python benchmarks/reference_comparison.py --install-only
    python benchmarks/reference_comparison.py --tables mace_cu md   # part of it (md needs mace_cu)
    python benchmarks/reference_comparison.py --tables mace_ethanol --seeds 1 2 3 --seeds-only  # seed spread
    python benchmarks/reference_comparison.py --tables mace_cu --speed-rounds 3 --seeds-only  # throughput, codes interleaved
    python benchmarks/reference_comparison.py --tables mace_ethanol --codes ours mace-torch --speed-rounds 3 \
        --seeds-only --batch-size 32 --out benchmarks/_work/speed.md  # only the interleaved rounds, at batch 32

The full run writes ``benchmarks/results/reference_comparison.md``, the quick one
``benchmarks/_work/reference_comparison_quick.md``; the numbers behind them are kept in
``benchmarks/_work/reference_comparison_{full,quick}.json``, so a partial rerun (``--tables``,
``--codes``) replaces only what it runs.

Run it with this package's Python. The reference codes are installed by
this script, each into its own virtual environment under ``benchmarks/_work/`` (git-ignored),
with ``torch`` pinned to this package's version so no code gets another build. This package
never imports them; each code, this one included, trains in its own process (so its timings and
peak memory are its own) through a small runner in ``benchmarks/reference/``.

Tables
------
``mace_cu``
    MACE on fcc copper, 3x3x3 conventional cells (108 atoms) in one fixed cell (physicsml's
    datamodule takes one global cell), rattled (0.1 Å), EMT energies and forces, 400 train /
    50 validation / 100 test; this package, mace-torch, physicsml.
``mace_ethanol``
    MACE on the bundled ethanol set (GFN2-xTB, 9 atoms, not periodic), shuffled with a fixed
    seed, 400 / 50 / 100; the same three codes.
``nequip_cu`` / ``nequip_ethanol``
    NequIP, this package against physicsml, on the same data; on copper for fewer epochs,
    because physicsml's NequIP takes many minutes an epoch there.
``md``
    ASE velocity-Verlet steps on a 108-atom copper cell with the MACE models of ``mace_cu``:
    this package's ``model.to_ase_calculator()`` against mace-torch's ``MACECalculator``.

Every code: cutoff 5 Å, batches of 8, float32 training, Adam (lr 1e-2, amsgrad, no weight
decay) at a constant learning rate, no gradient clipping, EMA or SWA, loss = 1 x MSE of the
total energy + 10 x MSE of the force components. Per-element reference energies (least squares
on the element counts of the training split), the scale of per-atom outputs (the RMS force
component) and the neighbour-sum normaliser (mean neighbours per atom) come from the training
split: this package and mace-torch compute them themselves; physicsml, which does not, is given
the same numbers.

Reported per code: test energy and force MAE, training structures per second (epoch time,
validation excluded), prediction structures per second (from structures to energies and
forces, graphs included, batches of 8), peak resident memory of the training process,
trainable parameters.

Throughput on a shared VM drifts by tens of percent over hours, so runs made at different times
compare poorly. ``--speed-rounds R`` therefore also trains every code of a table for
``SPEED_EPOCHS`` epochs in R rounds, the codes taking turns within each round (the first code
rotating), and compares each round's epoch times: the throughput ratios it reports are medians
of those paired, same-period ratios. Each of those runs also predicts the test split, so the
prediction throughput is compared the same way. With ``--seeds-only`` the rounds need no earlier
10-epoch rows (a fresh clone can run just them; give ``--out`` so the committed results file is
not replaced by a file holding only them). ``--batch-size`` changes the batch of the rounds
(training and prediction); rounds at another batch than the tables' are kept apart.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
RUNNERS = BENCHMARKS / "reference"
WORK = BENCHMARKS / "_work"
RESULTS = BENCHMARKS / "results" / "reference_comparison.md"
QUICK_RESULTS = WORK / "reference_comparison_quick.md"

sys.path.insert(0, str(RUNNERS))
from _common import ENERGY_KEY, FORCES_KEY  # noqa: E402

THREADS = 2
"""Torch threads of every code (``--threads``: on a machine shared with other work, one thread a
code keeps an OpenMP barrier from waiting on a descheduled thread at every kernel)."""
TORCH = "torch==2.13.0"
"""The torch every environment gets: installed first and held by a constraint, so installing a
reference code never replaces it (any other request would fetch a different, much larger build)."""


@dataclass(frozen=True)
class ReferenceCode:
    """A code installed from the package index into its own virtual environment."""

    venv: str
    packages: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    """Environment variables its runs need."""

    @property
    def python(self) -> Path:
        return WORK / self.venv / "bin" / "python"


REFERENCE_CODES = {
    "mace-torch": ReferenceCode("venv-mace", ("mace-torch==0.3.16",)),
    # physicsml 0.6.0's molflux fails to import with newer pyarrow; its pre-batching loads
    # pickled batches, which torch >= 2.6 refuses unless told otherwise
    "physicsml": ReferenceCode("venv-physicsml", ("physicsml==0.6.0", "pyarrow==24.0.0"),
                               (("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1"),)),
}
RUNNER = {"ours": "run_ours.py", "mace-torch": "run_mace_torch.py", "physicsml": "run_physicsml.py"}
VERSION_OF = {"ours": "physicsml-like", "mace-torch": "mace-torch", "physicsml": "physicsml"}
"""The distribution whose version identifies each code."""
DISPLAY = {"ours": "physicsml_like (this package)", "mace-torch": "mace-torch", "physicsml": "physicsml"}

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # mace-torch's MACE with a plain first interaction: 60,752 trainable parameters on one element
    "mace": {"hidden_irreps": "32x0e + 32x1o", "max_ell": 2, "correlation": 3, "num_interactions": 2,
             "num_bessel": 8, "num_polynomial_cutoff": 5, "mlp_irreps": "16x0e", "radial_mlp": [64, 64, 64]},
    # physicsml's NequIP defaults, with 3 layers
    "nequip": {"num_layers": 3, "num_features": 32, "max_ell": 2, "parity": True, "num_bessel": 8,
               "bessel_basis_trainable": True, "num_polynomial_cutoff": 6, "radial_mlp": [64, 64],
               "readout_features": 16},
}


@dataclass(frozen=True)
class Table:
    """One training comparison: a model family on a dataset, the codes that train it."""

    key: str
    """Name on the command line (``--tables``) and in the saved results."""
    family: str
    """``"mace"`` or ``"nequip"`` (a key of ``ARCHITECTURES``)."""
    dataset: str
    """``"cu"`` or ``"ethanol"``."""
    codes: tuple[str, ...]
    epochs: int
    """Epochs of the full run (``--quick``: 1)."""
    note: str = ""
    """Printed above the table."""


TABLES = (
    Table("mace_cu", "mace", "cu", ("ours", "mace-torch", "physicsml"), 10),
    Table("mace_ethanol", "mace", "ethanol", ("ours", "mace-torch", "physicsml"), 10),
    Table("nequip_cu", "nequip", "cu", ("ours", "physicsml"), 1,
          "1 epoch for both codes (physicsml's NequIP takes over 10 minutes an epoch here)"),
    Table("nequip_ethanol", "nequip", "ethanol", ("ours", "physicsml"), 10),
)
MD_CODES = ("ours", "mace-torch")
SPLITS = {"full": (400, 50, 100), "quick": (40, 10, 20)}
MD_SETTINGS = {
    "full": {"dtype": "float64", "timestep_fs": 1.0, "temperature_K": 300.0, "warmup_steps": 10, "steps": 50},
    "quick": {"dtype": "float64", "timestep_fs": 1.0, "temperature_K": 300.0, "warmup_steps": 2, "steps": 5},
}
COMPILE_TRAINING = False
"""``--compile-training``: ours trains with ``compile_training=True``; its first epoch (record
and compile) is reported apart as ``compile_epoch_seconds``, not in the epoch times."""
SPEED_EPOCHS = 2
"""Epochs of each ``--speed-rounds`` training (all of them timed)."""
TRAINING = {"cutoff": 5.0, "batch_size": 8, "lr": 1e-2, "energy_weight": 1.0, "forces_weight": 10.0, "seed": 0}


# ---------------------------------------------------------------------------- environments
def install(name: str) -> None:
    """Create the code's virtual environment unless it already holds what it should."""
    code = REFERENCE_CODES[name]
    root = WORK / code.venv
    marker = root / "installed.json"
    wanted = {"torch": TORCH, "packages": list(code.packages)}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    print(f"installing {name} into {root.relative_to(REPOSITORY)} ...", flush=True)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(root)], check=True)
    constraints = root / "constraints.txt"
    constraints.write_text(TORCH + "\n")
    pip = [str(code.python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, "--constraint", str(constraints), *code.packages], check=True)
    marker.write_text(json.dumps(wanted))


def version(code: str) -> str:
    """The installed version of the code's package (in its environment)."""
    if code == "ours":
        return importlib.metadata.version(VERSION_OF[code])
    query = f"import importlib.metadata as m; print(m.version({VERSION_OF[code]!r}))"
    done = subprocess.run([str(REFERENCE_CODES[code].python), "-c", query], capture_output=True, text=True)
    return done.stdout.strip() or "?"


# ---------------------------------------------------------------------------- data
def copper_frames(count: int, seed: int) -> list[Any]:
    """Rattled 108-atom fcc copper cells (one fixed cell) with EMT energies and forces."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
        atoms.rattle(stdev=0.1, seed=int(rng.integers(2**31)))
        atoms.calc = EMT()
        frames.append(with_labels(atoms, atoms.get_potential_energy(), atoms.get_forces()))
    return frames


def ethanol_frames(count: int, seed: int) -> list[Any]:
    """Frames of the bundled ethanol set in a shuffled order (fixed seed)."""
    from physicsml_like.datasets import load_dataset

    frames = load_dataset("ethanol")
    order = np.random.default_rng(seed).permutation(len(frames))[:count]
    if len(order) < count:
        raise ValueError(f"ethanol has {len(frames)} frames, {count} asked for")
    return [with_labels(frames[i], frames[i].get_potential_energy(), frames[i].get_forces()) for i in order]


def with_labels(atoms: Any, energy: float, forces: np.ndarray) -> Any:
    """A copy without calculator, the labels under names no reader takes for a calculator's."""
    out = atoms.copy()
    out.calc = None
    out.info = {ENERGY_KEY: float(energy)}
    out.arrays[FORCES_KEY] = np.asarray(forces, dtype=np.float64)
    return out


def statistics(train: list[Any], cutoff: float) -> dict[str, Any]:
    """What physicsml is given and the other codes derive themselves from the training split."""
    from ase.neighborlist import neighbor_list

    elements = sorted({int(z) for f in train for z in f.numbers})
    counts = np.array([[np.count_nonzero(f.numbers == z) for z in elements] for f in train], dtype=np.float64)
    energies = np.array([f.info[ENERGY_KEY] for f in train])
    reference = np.linalg.lstsq(counts, energies, rcond=None)[0]
    forces = np.concatenate([f.arrays[FORCES_KEY] for f in train])
    edges = sum(len(neighbor_list("i", f, cutoff)) for f in train)
    return {
        "element_energy": {str(z): float(e) for z, e in zip(elements, reference, strict=True)},
        "force_rms": float(np.sqrt(np.mean(forces**2))),
        "avg_num_neighbours": edges / sum(len(f) for f in train),
    }


def write_dataset(name: str, mode: str) -> dict[str, Any]:
    """Write the dataset's splits as extended XYZ and return what a job needs to know of them."""
    import ase.io

    n_train, n_val, n_test = SPLITS[mode]
    total = n_train + n_val + n_test
    frames = copper_frames(total, seed=0) if name == "cu" else ethanol_frames(total, seed=0)
    folder = WORK / "data" / mode / name
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": frames[:n_train], "validation": frames[n_train : n_train + n_val], "test": frames[n_train + n_val :]}
    paths = {}
    for split, subset in splits.items():
        paths[split] = str(folder / f"{split}.xyz")
        ase.io.write(paths[split], subset, format="extxyz")
    first = frames[0]
    periodic = bool(first.pbc.any())
    return {
        **paths,
        "n_train": n_train,
        "n_validation": n_val,
        "n_test": n_test,
        "atoms_per_structure": sorted({len(f) for f in frames}),
        "elements": sorted({int(z) for f in frames for z in f.numbers}),
        "pbc": [bool(p) for p in first.pbc],
        "cell": first.cell.array.tolist() if periodic else None,
        "statistics": statistics(splits["train"], TRAINING["cutoff"]),
    }


# ---------------------------------------------------------------------------- running
def run_job(code: str, job: dict[str, Any], runner: str | None = None) -> dict[str, Any]:
    """Run one code's runner (``runner``: another script of ``benchmarks/reference/`` in that
    code's environment) on a job in a fresh process; its result, or the error it ended with."""
    workdir = Path(job["workdir"])
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    job_file = workdir / "job.json"
    job = {**job, "result": str(workdir / "result.json")}
    job_file.write_text(json.dumps(job, indent=1))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    threads = str(job.get("threads", THREADS))
    env.update({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"})
    if code == "ours":
        python = Path(sys.executable)
        env["PYTHONPATH"] = str(REPOSITORY)
    else:
        python = REFERENCE_CODES[code].python
        env.update(dict(REFERENCE_CODES[code].env))
    command = [str(python), str(RUNNERS / (runner or RUNNER[code])), str(job_file)]
    start = time.perf_counter()
    with open(workdir / "log.txt", "w") as log:
        done = subprocess.run(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not Path(job["result"]).exists():
        tail = (workdir / "log.txt").read_text().strip().splitlines()[-25:]
        print("\n".join(tail), flush=True)
        return {"code": code, "error": (tail[-1] if tail else f"exit {done.returncode}")[:160]}
    result = json.loads(Path(job["result"]).read_text())
    result["process_wall_s"] = wall
    return result


def _replace_row(rows: list[dict[str, Any]], row: dict[str, Any], order: tuple[str, ...]) -> list[dict[str, Any]]:
    """The table's rows with this code's replaced (a partial rerun keeps the other codes' rows)."""
    by_code = {r["code"]: r for r in rows}
    by_code[row["code"]] = row
    return [by_code[c] for c in order if c in by_code]


def training_job(table: Table, code: str, data: dict[str, Any], mode: str, epochs: int, seed: int | None = None,
                 speed_round: int | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """One code's training job; ``seed`` (initial weights and batch order) defaults to TRAINING's;
    ``speed_round``: a throughput run of ``--speed-rounds``, in a folder of its own."""
    job = {
        "task": "train", "family": table.family, "dataset": table.dataset, "epochs": epochs,
        "architecture": ARCHITECTURES[table.family], "threads": THREADS, **TRAINING,
        **{k: data[k] for k in ("train", "validation", "test", "n_train", "elements", "pbc", "cell", "statistics")},
        "workdir": str(WORK / "runs" / mode / table.key / code),
    }
    if seed is not None and seed != TRAINING["seed"]:
        job["seed"] = seed
        job["workdir"] += f"-seed{seed}"
    if speed_round is not None:
        job["workdir"] = str(WORK / "runs" / mode / table.key / "speed" / f"{code}-round{speed_round}")
    if batch_size is not None:
        job["batch_size"] = batch_size
    if code == "ours" and COMPILE_TRAINING:  # one more epoch: the first records and compiles the step
        job.update(compile_training=True, epochs=epochs + 1)
        job["workdir"] += "-compiled"
    return job


def speed_rounds(table: Table, codes: list[str], data: dict[str, Any], mode: str, rounds: int,
                 batch_size: int | None = None) -> dict[str, Any]:
    """Each code's epoch times (and test-split prediction rate) in ``rounds`` rounds of short
    trainings, the codes taking turns (the first one rotating, so that no code always runs first)."""
    times: dict[str, list[list[float] | None]] = {code: [] for code in codes}
    predict: dict[str, list[float | None]] = {code: [] for code in codes}
    compile_epochs: list[float] = []
    for k in range(rounds):
        for code in codes[k % len(codes):] + codes[: k % len(codes)]:
            print(f"{table.key}: throughput round {k + 1}/{rounds}, {code} ...", flush=True)
            row = run_job(code, training_job(table, code, data, mode, SPEED_EPOCHS, speed_round=k, batch_size=batch_size))
            keys = ("epoch_seconds", "predict_structures_per_s", "error")
            print(f"  {json.dumps({key: row.get(key) for key in keys})}", flush=True)
            times[code].append(row.get("epoch_seconds") if "error" not in row else None)
            if "compile_epoch_seconds" in row:
                compile_epochs.append(row["compile_epoch_seconds"])
            predict[code].append(row.get("predict_structures_per_s") if "error" not in row else None)
    return {"epochs": SPEED_EPOCHS, "n_train": data["n_train"], "n_test": data["n_test"], "order": codes,
            "batch_size": batch_size or TRAINING["batch_size"], "epoch_seconds": times, "predict_structures_per_s": predict,
            "compile_training": COMPILE_TRAINING, "compile_epoch_seconds": compile_epochs}


def paired_speedups(speed: dict[str, Any], reference: str) -> list[float]:
    """Per round: the reference's mean epoch time over ours (above 1: ours is faster)."""
    ours, ref = speed["epoch_seconds"]["ours"], speed["epoch_seconds"][reference]
    return [float(np.mean(r) / np.mean(o)) for o, r in zip(ours, ref, strict=True) if o and r]


def paired_predict_speedups(speed: dict[str, Any], reference: str) -> list[float]:
    """Per round: our prediction rate over the reference's (rounds recorded before the
    prediction rate was kept give none)."""
    rates = speed.get("predict_structures_per_s", {})
    if "ours" not in rates or reference not in rates:
        return []
    return [float(o / r) for o, r in zip(rates["ours"], rates[reference], strict=True) if o and r]


def speed_comparisons(speed: dict[str, Any]) -> list[str]:
    """Ours against each reference from the interleaved rounds alone (medians of the paired ratios)."""
    if "ours" not in speed["epoch_seconds"]:
        return []
    lines = []
    for name in speed["order"]:
        if name == "ours":
            continue
        parts = []
        for what, paired in (("training", paired_speedups(speed, name)), ("prediction", paired_predict_speedups(speed, name))):
            if paired:
                parts.append(f"{what} throughput {float(np.median(paired)):.2f}x (median of {len(paired)} interleaved rounds, "
                             f"{min(paired):.2f}-{max(paired):.2f}x)")
        if parts:
            lines.append(f"- against {name} (interleaved rounds, batch {speed.get('batch_size', TRAINING['batch_size'])}): " + ", ".join(parts))
    return lines


def speed_section(speed: dict[str, Any]) -> list[str]:
    """The interleaved throughput runs of a table: epoch times by code and round."""
    codes = speed["order"]
    rounds = len(speed["epoch_seconds"][codes[0]])
    batch = speed.get("batch_size", TRAINING["batch_size"])
    rates = speed.get("predict_structures_per_s")
    lines = [
        f"Training throughput, codes interleaved: {rounds} round{'s' if rounds != 1 else ''}, each code training {speed['epochs']} epochs "
        f"a round ({speed['n_train']} structures an epoch, batch {batch}), the codes taking turns within a round"
        + (f", then predicting the {speed.get('n_test', '')} test structures:" if rates else ":"), "",
        "| code | epoch times by round (s) | median epoch (s) | train (structures/s) |" + (" predict by round (structures/s) | median predict (structures/s) |" if rates else ""),
        "|---|---|---|---|" + ("---|---|" if rates else ""),
    ]
    for code in codes:
        by_round = speed["epoch_seconds"][code]
        timed = [t for epochs in by_round if epochs for t in epochs]
        cells = "; ".join(", ".join(f"{t:.1f}" for t in epochs) if epochs else "failed" for epochs in by_round)
        median = float(np.median(timed)) if timed else float("nan")
        line = f"| {DISPLAY[code]} | {cells} | {_number(median, 1)} | {_number(speed['n_train'] / median, 2)} |"
        if rates:
            done = [r for r in rates[code] if r]
            line += (" " + "; ".join(_number(r, 1) for r in rates[code]) + f" | {_number(float(np.median(done)) if done else None, 1)} |")
        lines.append(line)
    return lines + [""]


# ---------------------------------------------------------------------------- report
def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": importlib.metadata.version("torch"),
        "e3nn": importlib.metadata.version("e3nn"),
        "threads": f"{THREADS} (torch.set_num_threads, OMP_NUM_THREADS)",
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def _number(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


SeedErrors = dict[str, dict[int, tuple[float, float]]]
"""code -> seed -> (force MAE meV/Å, energy MAE meV/atom) of every seed the code finished."""


def seed_errors(rows: list[dict[str, Any]], spread: dict[str, dict[str, Any]]) -> SeedErrors:
    """Each code's test errors by seed: ``TRAINING["seed"]`` from its table row, the others from
    the ``--seeds`` runs."""
    out: SeedErrors = {}
    for row in rows:
        if "error" in row:
            continue
        runs = {TRAINING["seed"]: row, **{int(seed): r for seed, r in spread.get(row["code"], {}).items()}}
        out[row["code"]] = {
            seed: (float(r["forces_mae_meV_per_A"]), float(r["energy_mae_meV_per_atom"]))
            for seed, r in sorted(runs.items())
            if r.get("error") is None and r.get("forces_mae_meV_per_A") is not None
        }
    return out


def spread_table(errors: SeedErrors) -> list[str]:
    """Mean, standard deviation and range of the test errors over seeds."""
    if not any(len(by_seed) > 1 for by_seed in errors.values()):
        return []
    lines = [
        "Over seeds (initial weights and batch order; seed 0 is the row above; timings and memory are seed 0's):", "",
        "| code | seeds | force MAE mean ± std (meV/Å) | force MAE min-max | energy MAE mean ± std (meV/atom) |",
        "|---|---|---|---|---|",
    ]
    for code, by_seed in errors.items():
        f, en = np.array(list(by_seed.values())).T
        std = lambda a: float(a.std(ddof=1)) if len(a) > 1 else float("nan")  # noqa: E731
        lines.append(
            f"| {DISPLAY[code]} | {len(f)} | {f.mean():.1f} ± {_number(std(f), 1)} | {f.min():.1f}-{f.max():.1f} | "
            f"{en.mean():.2f} ± {_number(std(en), 2)} |"
        )
    return lines + [""]


def speed_only_table(table: Table, speed: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """A table's interleaved throughput rounds alone (no full-length rows to show beside them)."""
    title = {"mace": "MACE", "nequip": "NequIP"}[table.family]
    where = {"cu": f"fcc Cu, {data['atoms_per_structure'][0]} atoms, fixed cell, EMT", "ethanol": "ethanol, 9 atoms, GFN2-xTB"}[table.dataset]
    batch = speed.get("batch_size", TRAINING["batch_size"])
    compiled = []
    if speed.get("compile_training"):
        first = speed.get("compile_epoch_seconds", [])
        compiled = [f"Ours with `compile_training=True`: each run's first epoch (recording and compiling the step, "
                    f"{', '.join(f'{s:.1f}' for s in first)} s) is not in the epoch times below.", ""]
    return ([f"## {title} on {where}: throughput only, batch {batch}" + (", ours compiled" if compiled else ""), ""]
            + compiled + speed_section(speed) + speed_comparisons(speed) + [""])


def training_table(
    table: Table, rows: list[dict[str, Any]], data: dict[str, Any], epochs: int, versions: dict[str, str],
    spread: dict[str, dict[str, Any]] | None = None, speed: dict[str, Any] | None = None,
) -> list[str]:
    n_train, n_val, n_test = data["n_train"], data["n_validation"], data["n_test"]
    title = {"mace": "MACE", "nequip": "NequIP"}[table.family]
    where = {"cu": f"fcc Cu, {data['atoms_per_structure'][0]} atoms, fixed cell, EMT", "ethanol": "ethanol, 9 atoms, GFN2-xTB"}[table.dataset]
    lines = [f"## {title} on {where} ({n_train} train / {n_val} validation / {n_test} test, {epochs} epoch{'s' if epochs != 1 else ''})", ""]
    if table.note and epochs == table.epochs:
        lines += [f"Note: {table.note}.", ""]
    lines += [
        "| code | version | trainable parameters (changed by training) | energy MAE (meV/atom) | force MAE (meV/Å) | "
        "train (structures/s) | mean epoch (s) | predict (structures/s) | peak RSS (GiB) | process wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    baseline = None
    for row in rows:
        code = row["code"]
        name = DISPLAY[code]
        if "error" in row:
            lines.append(f"| {name} | {versions.get(code, '?')} | failed: {row['error']} |")
            continue
        baseline = row["zero_force_mae_meV_per_A"]
        epoch = row["train_seconds"] / row["epochs_timed"] if row["epochs_timed"] else None
        lines.append(
            f"| {name} | {versions.get(code, '?')} | {row['parameters']:,} ({_number(row.get('updated_parameters'), 0)}) | "
            f"{_number(row['energy_mae_meV_per_atom'], 2)} | "
            f"{_number(row['forces_mae_meV_per_A'], 1)} | {_number(row['train_structures_per_s'], 2)} | {_number(epoch, 1)} | "
            f"{_number(row['predict_structures_per_s'], 1)} | {_number(row['peak_rss_gib'], 2)} | {_number(row['process_wall_s'], 0)} |"
        )
    if baseline is not None:
        lines += ["", f"Zero-force baseline (mean |force component| of the test set): {baseline:.1f} meV/Å."]
    errors = seed_errors(rows, spread or {})
    lines += [""] + spread_table(errors) + (speed_section(speed) if speed else []) + comparisons(table, rows, errors, speed) + [""]
    return lines


def comparisons(table: Table, rows: list[dict[str, Any]], errors: SeedErrors, speed: dict[str, Any] | None = None) -> list[str]:
    """Ours against each reference: the targets (force MAE no worse, training throughput at
    least 1.5x, peak memory at most half) where they apply, the plain ratios elsewhere. The
    force MAE ratio compares means over the seeds both codes finished; the throughput ratio is
    the median of the paired ratios of the interleaved rounds where they were run, else the
    ratio of the table's rows."""
    by_code = {r["code"]: r for r in rows if "error" not in r}
    ours = by_code.get("ours")
    if ours is None:
        return []
    lines = []
    with_targets = table.key == "mace_cu"
    for name, ref in by_code.items():
        if name == "ours":
            continue
        common = sorted(errors["ours"].keys() & errors[name].keys())
        mine, theirs = (np.array([errors[code][s][0] for s in common]) for code in ("ours", name))
        mae = float(mine.mean() / theirs.mean())
        over = f" (means over {len(common)} seeds)" if len(common) > 1 else ""
        noise = ""
        if len(common) > 1:  # how far apart the means are, in standard errors of their difference
            error = float(np.sqrt(mine.var(ddof=1) / len(mine) + theirs.var(ddof=1) / len(theirs)))
            difference = float(mine.mean() - theirs.mean())
            noise = f"; difference {difference:+.1f} ± {error:.1f} meV/Å, {abs(difference) / error:.1f} standard errors"
        paired = paired_speedups(speed, name) if speed and name in speed["epoch_seconds"] else []
        if paired:
            ratio = float(np.median(paired))
            how = f" (median of {len(paired)} interleaved rounds, {min(paired):.2f}-{max(paired):.2f}x)"
        else:
            ratio, how = ours["train_structures_per_s"] / ref["train_structures_per_s"], ""
        memory = ours["peak_rss_gib"] / ref["peak_rss_gib"]
        if with_targets:
            verdict = lambda ok: "met" if ok else "missed"  # noqa: E731
            lines.append(
                f"- against {name}: force MAE ratio{over} {mae:.3f} (target <= 1: {verdict(mae <= 1)}{noise}), "
                f"training throughput {ratio:.2f}x{how} (target >= 1.5x: {verdict(ratio >= 1.5)}), "
                f"peak RSS {memory:.2f}x (target <= 0.5x: {verdict(memory <= 0.5)})"
            )
        else:
            lines.append(f"- against {name}: force MAE ratio{over} {mae:.3f}{f' ({noise[2:]})' if noise else ''}, "
                         f"training throughput {ratio:.2f}x{how}, peak RSS {memory:.2f}x")
    return lines


def md_table(rows: list[dict[str, Any]], settings: dict[str, Any], versions: dict[str, str]) -> list[str]:
    lines = [
        f"## Molecular dynamics step time (MACE of the copper table, 108 atoms, {settings['dtype']})", "",
        f"ASE `VelocityVerlet`, {settings['timestep_fs']} fs, velocities drawn at {settings['temperature_K']:.0f} K, "
        f"{settings['warmup_steps']} warm-up steps then {settings['steps']} timed steps; median and 90th percentile. "
        "This package: `model.to_ase_calculator(dtype=...)` on the saved model; mace-torch: `MACECalculator` on "
        "the `.model` file it wrote. mace-torch's calculator computes the stress at every step of a MACE "
        "model, so this package is timed both without and with the stress.", "",
        "| code | version | computes | ms/step (median) | ms/step (p90) | total-energy change (meV/atom) | peak RSS (GiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        code = row["code"]
        name = DISPLAY[code]
        if "error" in row:
            lines.append(f"| {name} | {versions.get(code, '?')} | failed: {row['error']} |")
            continue
        for label, what in (("forces", "energy, forces"), ("forces_stress", "energy, forces, stress")):
            key = f"md_ms_per_step[{label}]"
            if key in row:
                lines.append(
                    f"| {name} | {versions.get(code, '?')} | {what} | {_number(row[key], 1)} | "
                    f"{_number(row[f'md_ms_per_step_p90[{label}]'], 1)} | "
                    f"{_number(row[f'md_total_energy_change_meV_per_atom[{label}]'], 3)} | {_number(row['peak_rss_gib'], 2)} |"
                )
    return lines + [""]


def settings_section(mode: str) -> list[str]:
    mace, nequip = ARCHITECTURES["mace"], ARCHITECTURES["nequip"]
    return [
        "## Settings (the same for every code)", "",
        f"- Training: cutoff {TRAINING['cutoff']} Å, batch {TRAINING['batch_size']}, float32, Adam lr {TRAINING['lr']} "
        "with amsgrad, no weight decay, constant learning rate (physicsml: `scheduler=None`; mace-torch: "
        "`--scheduler ExponentialLR --lr_scheduler_gamma 1.0`), no gradient clipping (mace-torch: `--clip_grad None`), "
        "no EMA or SWA, validation every epoch.",
        f"- Loss: {TRAINING['energy_weight']:g} x MSE of the total energy + {TRAINING['forces_weight']:g} x MSE of the force components. "
        "mace-torch's `weighted` loss averages the energy error per atom, so it gets `--energy_weight` "
        "multiplied by N² (every structure of a dataset has N atoms), which is the same loss.",
        "- Normalisation from the training split: per-element reference energies (least squares), the RMS force "
        "component as scale of the per-atom outputs, the mean neighbour count as normaliser. This package and "
        "mace-torch (`--E0s average --scaling rms_forces_scaling`) compute them; physicsml is given the same "
        "numbers (`physicsml_total_atomic_energy`, `scaling_std`, `avg_num_neighbours`).",
        f"- MACE: hidden irreps {mace['hidden_irreps']}, max_ell {mace['max_ell']}, correlation {mace['correlation']}, "
        f"{mace['num_interactions']} interactions (plain first, residual after), {mace['num_bessel']} Bessel functions, "
        f"polynomial cutoff p={mace['num_polynomial_cutoff']}, MLP irreps {mace['mlp_irreps']}, radial MLP {mace['radial_mlp']}.",
        f"- NequIP: {nequip['num_layers']} layers, {nequip['num_features']} features, max_ell {nequip['max_ell']} with both "
        f"parities, {nequip['num_bessel']} trainable Bessel functions, polynomial cutoff p={nequip['num_polynomial_cutoff']}, "
        f"radial MLP {nequip['radial_mlp']}, self-connection and residual updates, readout of {nequip['readout_features']} scalars.",
        "- Parameters: trainable values (`requires_grad`); in brackets, how many of them training changed. "
        "A weight that cannot reach the loss gets a zero gradient, and Adam without weight decay never moves it: "
        "physicsml's NequIP computes every irrep in its last layer though its readout reads only the scalars, "
        "whereas this package's last NequIP block computes only what the readout reads.",
        "- Batches: this package and mace-torch draw new batches every epoch; physicsml (`pre_batch=\"in_memory\"`) "
        "forms its batches once and shuffles their order.",
        "- Timings: training structures/s = training structures x timed epochs / time in training epochs "
        "(validation excluded; graph building before the first epoch excluded); prediction = the test split "
        "from structures to energies and forces, batches of 8. Peak RSS: `VmHWM` of the process that trained "
        "(includes its predictions, which need less). Each code in its own process, nothing else running.",
        "",
    ]


def render(mode: str, results: dict[str, Any], datasets: dict[str, Any], versions: dict[str, str], commands: list[str]) -> str:
    info = machine()
    lines = [
        "# Reference comparison: MACE and NequIP against mace-torch and physicsml", "",
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']} in every "
        f"environment, e3nn {info['e3nn']} here; {info['threads']} threads for every code.  ",
        f"Date: {info['date']}  ",
        f"Command{'s' if len(commands) > 1 else ''}: " + ", ".join(f"`{c}`" for c in commands) + ("  \nQuick mode: a plumbing check, not a measurement." if mode == "quick" else ""), "",
        "Versions: " + ", ".join(f"{DISPLAY[code]} {v}" for code, v in versions.items()), "",
    ]
    for table in TABLES:
        if results.get(table.key):
            lines += training_table(table, results[table.key], datasets[table.dataset], results[f"{table.key}:epochs"],
                                    versions, results.get(f"{table.key}:seeds"), results.get(f"{table.key}:speed"))
        elif f"{table.key}:speed" in results:  # only the interleaved rounds were run
            lines += speed_only_table(table, results[f"{table.key}:speed"], datasets[table.dataset])
        for key in sorted(k for k in results if k.startswith(f"{table.key}:speed:")):  # another batch, compiled
            lines += speed_only_table(table, results[key], datasets[table.dataset])
    if "md" in results:
        lines += md_table(results["md"], MD_SETTINGS[mode], versions)
    lines += settings_section(mode)
    return "\n".join(lines) + "\n"


NOTES_HEADING = "## Notes on this run"


def kept_notes(out: Path) -> str:
    """The hand-written notes section at the end of an earlier results file (from
    :data:`NOTES_HEADING` on), which a rerun keeps under the new tables."""
    if not out.exists():
        return ""
    text = out.read_text()
    start = text.find(NOTES_HEADING)
    return text[start:].rstrip() + "\n" if start >= 0 else ""


def main() -> None:
    global THREADS, COMPILE_TRAINING
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small splits and 1 epoch, to check the plumbing")
    parser.add_argument("--tables", nargs="*", default=[t.key for t in TABLES] + ["md"],
                        choices=[t.key for t in TABLES] + ["md"], help="which tables to run")
    parser.add_argument("--codes", nargs="*", default=["ours", *REFERENCE_CODES], choices=["ours", *REFERENCE_CODES])
    parser.add_argument("--seeds", nargs="*", type=int, default=[],
                        help="train again with these seeds (besides seed 0) for the accuracy spread; "
                             "timings and memory stay those of seed 0")
    parser.add_argument("--seeds-only", action="store_true",
                        help="run only the --seeds and --speed-rounds jobs, keeping the tables' seed-0 rows as they are")
    parser.add_argument("--speed-rounds", type=int, default=0,
                        help=f"also time every code of each table in this many interleaved rounds of {SPEED_EPOCHS}-epoch trainings")
    parser.add_argument("--threads", type=int, default=None, help=f"torch threads of every code (default {THREADS})")
    parser.add_argument("--batch-size", type=int, default=TRAINING["batch_size"],
                        help="batch of the --speed-rounds runs (training and prediction); the tables keep theirs")
    parser.add_argument("--compile-training", action="store_true",
                        help="ours with compile_training=True (its first, compiling epoch timed apart)")
    parser.add_argument("--install-only", action="store_true", help="set up the reference environments and stop")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args()
    THREADS = args.threads or THREADS
    COMPILE_TRAINING = args.compile_training
    mode = "quick" if args.quick else "full"
    out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    command = "python benchmarks/reference_comparison.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    for name in REFERENCE_CODES:
        if name in args.codes:
            install(name)
    if args.install_only:
        return
    # every row shown names its version; a code not asked for may have no environment
    versions = {code: version(code) for code in ["ours", *REFERENCE_CODES] if code in args.codes}

    tables = [t for t in TABLES if t.key in args.tables]
    needed = {t.dataset for t in tables} | ({"cu"} if "md" in args.tables else set())
    datasets = {}
    for name in sorted(needed):
        print(f"writing the {name} splits ...", flush=True)
        datasets[name] = write_dataset(name, mode)

    results: dict[str, Any] = {}
    saved = WORK / f"reference_comparison_{mode}.json"
    if saved.exists():  # tables not rerun keep their last numbers
        results = json.loads(saved.read_text())
    results["datasets"] = {**results.get("datasets", {}), **datasets}
    for table in tables:
        epochs = 1 if args.quick else table.epochs
        if results.get(f"{table.key}:epochs") != epochs and args.seeds_only and args.seeds:
            raise SystemExit(f"--seeds-only: {table.key} has no {epochs}-epoch rows to add seeds to")
        if results.get(f"{table.key}:epochs") != epochs and not args.seeds_only:  # speed rounds alone need no rows
            results[table.key] = []
            results.pop(f"{table.key}:seeds", None)
            results.pop(f"{table.key}:speed", None)
        for code in [c for c in table.codes if c in args.codes and not args.seeds_only]:
            print(f"{table.key}: {code}, {epochs} epoch(s) ...", flush=True)
            row = run_job(code, training_job(table, code, datasets[table.dataset], mode, epochs))
            print(f"  {json.dumps(row)}", flush=True)
            results[table.key] = _replace_row(results.get(table.key, []), row, table.codes)
            results[f"{table.key}:epochs"] = epochs
            saved.write_text(json.dumps(results, indent=1))
        for seed in args.seeds:
            for code in [c for c in table.codes if c in args.codes]:
                print(f"{table.key}: {code}, seed {seed} ...", flush=True)
                job = training_job(table, code, datasets[table.dataset], mode, epochs, seed=seed)
                row = run_job(code, job)
                print(f"  {json.dumps(row)}", flush=True)
                spread = results.setdefault(f"{table.key}:seeds", {}).setdefault(code, {})
                spread[str(seed)] = {k: row.get(k) for k in ("energy_mae_meV_per_atom", "forces_mae_meV_per_A", "error")}
                saved.write_text(json.dumps(results, indent=1))
        if args.speed_rounds:
            codes = [c for c in table.codes if c in args.codes]
            batch = args.batch_size if args.batch_size != TRAINING["batch_size"] else None
            key = f"{table.key}:speed" + (f":b{batch}" if batch else "") + (":compiled" if COMPILE_TRAINING else "")
            results[key] = speed_rounds(table, codes, datasets[table.dataset], mode, args.speed_rounds, batch)
            saved.write_text(json.dumps(results, indent=1))
    if "md" in args.tables:
        for code in [c for c in MD_CODES if c in args.codes]:
            print(f"md: {code} ...", flush=True)
            job = {"task": "md", "threads": THREADS, "seed": TRAINING["seed"], "test": datasets["cu"]["test"],
                   "md": MD_SETTINGS[mode], "trained_workdir": str(WORK / "runs" / mode / "mace_cu" / code),
                   "workdir": str(WORK / "runs" / mode / "md" / code)}
            row = run_job(code, job)
            print(f"  {json.dumps(row)}", flush=True)
            results["md"] = _replace_row(results.get("md", []), row, MD_CODES)
            saved.write_text(json.dumps(results, indent=1))
    # a partial rerun adds its command to those that made the other numbers
    commands = [c for c in results.get("commands", []) if c != command]
    if tables or "md" in args.tables:  # ``--tables`` with none named only renders the file again
        commands.append(command)
    results["commands"] = commands
    saved.write_text(json.dumps(results, indent=1))
    text = render(mode, results, results["datasets"], versions, commands) + kept_notes(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
