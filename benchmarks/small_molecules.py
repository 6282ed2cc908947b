"""Where a training step and a prediction batch spend their time on small molecules, and how
many structures a second this package trains and predicts there.

    python benchmarks/small_molecules.py profile                 # phase table, MACE/NequIP/PaiNN
    python benchmarks/small_molecules.py profile --families mace --configs ethanol-b8 --pyinstrument benchmarks/_work/pyi
    python benchmarks/small_molecules.py throughput --rounds 3   # structures/s, families interleaved
    python benchmarks/small_molecules.py throughput --compile-training --families mace nequip   # eager and compiled
    python benchmarks/small_molecules.py weights save /tmp/w.pt  # 10 epochs of MACE on 40 ethanol frames ...
    python benchmarks/small_molecules.py weights compare /tmp/w.pt   # ... and the largest weight change since
    python benchmarks/small_molecules.py weights compare /tmp/w.pt --compile-training   # compiled against eager
    python benchmarks/small_molecules.py step --families mace --threads 1   # ms per bare training step
    PYTHONPATH=/path/to/other/checkout python benchmarks/small_molecules.py step ...   # the same, other code

With 9 to 20 atoms a structure, a step holds 70-600 atoms, and the fixed costs of a step (Python,
small kernels, allocation, the data pipeline, Lightning's loop, logging) weigh as much as the
arithmetic. ``profile`` trains each family for a few epochs through the ordinary
``model.train`` with timers around the pieces of a step (patched into this process only) and
reports milliseconds per step of each, and the same for ``model.predict``. The comparison with
mace-torch and physicsml is made by ``benchmarks/reference_comparison.py --speed-rounds``
(the codes in their own environments, interleaved). Results: ``benchmarks/results/small_molecules.md``.

Every run uses one process, 2 torch threads (``--threads``), no validation in the profile (so
that its steps are training steps only).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
from reference_comparison import ARCHITECTURES  # noqa: E402

FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "mace": ("mace_model", ARCHITECTURES["mace"]),
    "nequip": ("nequip_model", ARCHITECTURES["nequip"]),
    "painn": ("painn_model", {}),  # the family's defaults
}
CONFIGS: dict[str, tuple[str, int]] = {
    "ethanol-b8": ("ethanol", 8),
    "ethanol-b32": ("ethanol", 32),
    "small_molecules-b8": ("small_molecules", 8),
}
SPLITS = {"ethanol": (400, 100), "small_molecules": (158, 40)}
"""Training and test structures of each set (ethanol: the reference comparison's sizes)."""
CUTOFF = 5.0


def frames(dataset: str) -> tuple[list[Any], list[Any]]:
    """Training and test frames, in a fixed shuffled order."""
    from physicsml_like.datasets import load_dataset

    data = load_dataset(dataset)
    order = np.random.default_rng(0).permutation(len(data))
    n_train, n_test = SPLITS[dataset]
    return [data[i] for i in order[:n_train]], [data[i] for i in order[n_train : n_train + n_test]]


def build(family: str, batch_size: int, epochs: int, root: str, **overrides: Any) -> Any:
    """The untrained model, trained as the reference comparison trains (Adam 1e-2 amsgrad, constant
    rate, 1 x energy + 10 x forces MSE)."""
    from physicsml_like.training import get_model_class

    name, architecture = FAMILIES[family]
    batch = {"batch_size": batch_size}
    return get_model_class(name)(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": CUTOFF,
                    "train": batch, "validation": batch, "predict": batch},
        compute_forces=True, **architecture,
        losses={"energy": {"per_atom": False, "weight": 1.0}, "forces": {"weight": 10.0}},
        optimizer={"name": "Adam", "config": {"lr": 1e-2, "amsgrad": True}}, scheduler=None, seed=0,
        trainer={"max_epochs": epochs, "default_root_dir": root, "enable_progress_bar": False,
                 "num_sanity_val_steps": 0},
        **overrides,
    )


# ---------------------------------------------------------------------------- phase timers
class Phases:
    """Seconds spent inside wrapped callables, by label (nested labels overlap; the report
    subtracts the inner ones)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.enabled = False
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = owner.__dict__[name] if name in owner.__dict__ else getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.calls[label] += 1

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


@contextmanager
def phase_timers() -> Iterator[Phases]:
    """Timers around the pieces of a training step and of prediction."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.loops.optimization.automatic import Closure
    from lightning.pytorch.strategies import Strategy

    from physicsml_like.data.datamodule import GraphDataModule, PackedBatches
    from physicsml_like.training.module import AtomisticLightningModule as M

    phases = Phases()
    for owner, name, label in (
        (PackedBatches, "__getitem__", "data: gather a batch"),
        (GraphDataModule, "setup", "data: graphs and statistics (setup)"),
        (Strategy, "batch_to_device", "data: batch to device"),
        (M, "training_step", "training_step"),
        (M, "predict_step", "predict_step"),
        (M, "_graph", "forward: edge vectors (_graph)"),
        (M, "_derivatives", "forward: forces (autograd.grad)"),
        (M, "loss_terms", "loss_terms"),
        (M, "_update_metrics", "metrics: update and log"),
        (M, "backward", "backward"),
        (M, "on_before_optimizer_step", "grad norm and its log"),
        (Closure, "__call__", "closure"),
        (torch.optim.Adam, "step", "optimizer.step"),
        (pl.Trainer, "predict", "trainer.predict"),
    ):
        phases.wrap(owner, name, label)
    try:
        yield phases
    finally:
        phases.restore()


def _epoch_callback(phases: Phases, skip: int) -> Any:
    """Switches the timers on from epoch ``skip`` (the first epochs warm up) and times epochs."""
    import lightning.pytorch as pl

    class Timer(pl.Callback):
        def __init__(self) -> None:
            self.epochs: list[float] = []
            self.steps = 0
            self._start = 0.0

        def setup(self, trainer: Any, module: Any, stage: str) -> None:
            if "forward" not in module.network.__dict__:  # the instance's, so no other module is timed
                phases.wrap(module.network, "forward", "forward: network")

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            phases.enabled = trainer.current_epoch >= skip
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
            self.steps += phases.enabled

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            if phases.enabled:
                self.epochs.append(time.perf_counter() - self._start)
            phases.enabled = False

    return Timer()


def training_profile(family: str, config: str, epochs: int = 3, skip: int = 1, pyinstrument: Path | None = None) -> dict[str, Any]:
    """Milliseconds per training step of each phase (epochs after the first ``skip``)."""
    dataset, batch_size = CONFIGS[config]
    train, test = frames(dataset)
    with tempfile.TemporaryDirectory() as root:
        model = build(family, batch_size, epochs, root)
        with phase_timers() as phases:
            timer = _epoch_callback(phases, skip)
            profiler = _start_pyinstrument() if pyinstrument else None
            model.train(train, callbacks=[timer])
            if profiler is not None:
                _save_pyinstrument(profiler, pyinstrument / f"train-{family}-{config}.txt")
            train_ms = {k: 1000 * v / timer.steps for k, v in phases.seconds.items()}
            epoch = float(np.mean(timer.epochs))
            steps = timer.steps
            phases.reset()
            phases.enabled = True
            profiler = _start_pyinstrument() if pyinstrument else None
            start = time.perf_counter()
            model.predict(test)
            predict_s = time.perf_counter() - start
            if profiler is not None:
                _save_pyinstrument(profiler, pyinstrument / f"predict-{family}-{config}.txt")
            predict_batches = phases.calls.get("predict_step", 1)
            predict_ms = {k: 1000 * v / predict_batches for k, v in phases.seconds.items()}
    return {
        "family": family, "config": config, "batch_size": batch_size, "steps": steps,
        "step_ms": 1000 * epoch * len(timer.epochs) / steps, "train_structures_per_s": len(train) / epoch,
        "train_ms": train_ms, "predict_s": predict_s, "predict_batches": predict_batches,
        "predict_structures_per_s": len(test) / predict_s, "predict_ms": predict_ms,
        "atoms_per_step": batch_size * float(np.mean([len(f) for f in train])),
    }


def _start_pyinstrument() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    return profiler


def _save_pyinstrument(profiler: Any, path: Path) -> None:
    profiler.stop()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


TRAIN_ROWS: list[tuple[str, Callable[[dict[str, float]], float]]] = [
    ("data: gather a batch (collation)", lambda m: m.get("data: gather a batch", 0.0)),
    ("data: batch to device", lambda m: m.get("data: batch to device", 0.0)),
    ("forward: edge vectors", lambda m: m.get("forward: edge vectors (_graph)", 0.0)),
    ("forward: network", lambda m: m.get("forward: network", 0.0)),
    ("forward: forces by autograd.grad (create_graph)", lambda m: m.get("forward: forces (autograd.grad)", 0.0)),
    ("forward: targets' readout, step logs", lambda m: m.get("training_step", 0.0) - m.get("loss_terms", 0.0) - _forward(m)),
    ("loss", lambda m: m.get("loss_terms", 0.0) - m.get("metrics: update and log", 0.0)),
    ("metrics and epoch losses (update, log)", lambda m: m.get("metrics: update and log", 0.0)),
    ("backward", lambda m: m.get("backward", 0.0)),
    ("grad norm and its log", lambda m: m.get("grad norm and its log", 0.0)),
    # Lightning runs the closure (training_step, backward) and then on_before_optimizer_step inside Adam.step
    ("optimiser (Adam step)", lambda m: m.get("optimizer.step", 0.0) - m.get("closure", 0.0) - m.get("grad norm and its log", 0.0)),
    ("Lightning closure (zero_grad, step logs, hooks)", lambda m: m.get("closure", 0.0) - m.get("training_step", 0.0) - m.get("backward", 0.0)),
]


def _forward(m: dict[str, float]) -> float:
    return sum(m.get(k, 0.0) for k in ("forward: edge vectors (_graph)", "forward: network", "forward: forces (autograd.grad)"))


def profile_table(rows: list[dict[str, Any]]) -> list[str]:
    """Milliseconds per training step, phase by phase, one column a run."""
    heads = [f"{r['family']} {r['config']}" for r in rows]
    lines = ["| ms per training step | " + " | ".join(heads) + " |", "|---|" + "---|" * len(rows)]
    for label, value in TRAIN_ROWS:
        lines.append(f"| {label} | " + " | ".join(f"{value(r['train_ms']):.2f}" for r in rows) + " |")
    rest = [r["step_ms"] - sum(v(r["train_ms"]) for _, v in TRAIN_ROWS) for r in rows]
    lines.append("| Lightning loop, rest | " + " | ".join(f"{x:.2f}" for x in rest) + " |")
    lines.append("| **step (epoch time / steps)** | " + " | ".join(f"**{r['step_ms']:.2f}**" for r in rows) + " |")
    lines.append("| atoms a step | " + " | ".join(f"{r['atoms_per_step']:.0f}" for r in rows) + " |")
    lines.append("| train structures/s | " + " | ".join(f"{r['train_structures_per_s']:.0f}" for r in rows) + " |")
    return lines


def predict_table(rows: list[dict[str, Any]]) -> list[str]:
    """Milliseconds per prediction batch, phase by phase."""
    heads = [f"{r['family']} {r['config']}" for r in rows]
    lines = ["| ms per prediction batch | " + " | ".join(heads) + " |", "|---|" + "---|" * len(rows)]
    items = [
        ("graphs: neighbour lists, packing (setup)", lambda m: m.get("data: graphs and statistics (setup)", 0.0)),
        ("data: gather a batch", lambda m: m.get("data: gather a batch", 0.0)),
        ("data: batch to device", lambda m: m.get("data: batch to device", 0.0)),
        ("forward: edge vectors", lambda m: m.get("forward: edge vectors (_graph)", 0.0)),
        ("forward: network", lambda m: m.get("forward: network", 0.0)),
        ("forward: forces by autograd.grad", lambda m: m.get("forward: forces (autograd.grad)", 0.0)),
        ("predict_step rest (readout, offsets, to CPU)", lambda m: m.get("predict_step", 0.0) - _forward(m)),
        ("trainer.predict rest (Lightning loop)", lambda m: m.get("trainer.predict", 0.0) - m.get("predict_step", 0.0)
         - m.get("data: gather a batch", 0.0) - m.get("data: batch to device", 0.0)),
    ]
    for label, value in items:
        lines.append(f"| {label} | " + " | ".join(f"{value(r['predict_ms']):.2f}" for r in rows) + " |")
    total = [1000 * r["predict_s"] / r["predict_batches"] for r in rows]
    rest = [t - sum(v(r["predict_ms"]) for _, v in items) for t, r in zip(total, rows, strict=True)]
    lines.append("| predict() rest (datamodule, trainer, assembling) | " + " | ".join(f"{x:.2f}" for x in rest) + " |")
    lines.append("| **predict() per batch** | " + " | ".join(f"**{t:.2f}**" for t in total) + " |")
    lines.append("| predict structures/s | " + " | ".join(f"{r['predict_structures_per_s']:.0f}" for r in rows) + " |")
    return lines


# ---------------------------------------------------------------------------- throughput
def throughput_once(family: str, config: str, epochs: int, **overrides: Any) -> dict[str, Any]:
    """Epoch times (validation excluded) and the prediction rate of one fresh training."""
    dataset, batch_size = CONFIGS[config]
    train, test = frames(dataset)
    with tempfile.TemporaryDirectory() as root:
        model = build(family, batch_size, epochs, root, **overrides)
        with phase_timers() as phases:
            timer = _epoch_callback(phases, 0)
            model.train(train, callbacks=[timer])
        start = time.perf_counter()
        model.predict(test)
        predict_s = time.perf_counter() - start
    epochs_timed = timer.epochs
    out: dict[str, Any] = {}
    if overrides.get("compile_training"):  # the first epoch records and compiles the step
        out["compile_epoch_seconds"], epochs_timed = epochs_timed[0], epochs_timed[1:]
    return {**out, "epoch_seconds": epochs_timed, "train_structures_per_s": len(train) / float(np.median(epochs_timed)),
            "predict_structures_per_s": len(test) / predict_s}


# ---------------------------------------------------------------------------- bare steps
def step_ms(family: str, config: str, repeats: int = 20) -> dict[str, float]:
    """Milliseconds of one training step's arithmetic on one fixed batch, outside Lightning:
    the forces with ``create_graph``, a loss of the energies and forces (1 x energy^2 +
    10 x mean force^2: the graph of the real loss, without labels) and its backward. Median and
    best of ``repeats`` after 5 warm-up steps; for before/after comparisons of the network, run
    the two checkouts in turns (``PYTHONPATH``), since the machine's speed drifts."""
    from physicsml_like.integrations.potential import Potential

    dataset, batch_size = CONFIGS[config]
    train, _ = frames(dataset)
    with tempfile.TemporaryDirectory() as root:
        model = build(family, batch_size, 1, root)
        model.initialise(train[:batch_size])
    module = model.module
    module.train()
    chosen = train[:batch_size]
    batch = Potential(model).batch(
        np.concatenate([a.positions for a in chosen]), np.concatenate([a.numbers for a in chosen]),
        np.stack([a.cell.array for a in chosen]), np.stack([a.pbc for a in chosen]),
        system=np.repeat(np.arange(len(chosen)), [len(a) for a in chosen]))
    energy = module.energy_target
    assert energy is not None
    from physicsml_like.targets.kinds import Forces

    forces = next(t.name for t in module.all_targets if isinstance(t, Forces))

    def once() -> None:
        predictions = module.compute(batch, module.network, create_graph=True)
        loss = (predictions.values[energy.name] ** 2).sum() + 10 * (predictions.values[forces] ** 2).mean()
        loss.backward()
        module.zero_grad(set_to_none=True)

    for _ in range(5):
        once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(1000 * (time.perf_counter() - start))
    return {"median_ms": float(np.median(times)), "best_ms": float(min(times))}


# ---------------------------------------------------------------------------- weights
def weights(mode: str, path: Path, **overrides: Any) -> None:
    """Train MACE (the reference comparison's) on 40 ethanol frames for 10 epochs, seed 0, with
    validation; ``save`` the final weights or ``compare`` them with saved ones. A change that keeps
    the arithmetic must give the same weights to float tolerance (``--compile-training``: the
    compiled step against saved eager weights)."""
    import torch

    from physicsml_like.datasets import load_dataset

    data = load_dataset("ethanol")
    with tempfile.TemporaryDirectory() as root:
        model = build("mace", 8, 10, root, **overrides)
        model.train(data[:40], data[40:48])
    state = {k: v.detach().clone() for k, v in model.module.network.state_dict().items()}
    if mode == "save":
        torch.save(state, path)
        print(f"saved {len(state)} tensors to {path}")
        return
    saved = torch.load(path)
    if saved.keys() != state.keys():
        raise SystemExit(f"different weights: {sorted(set(saved) ^ set(state))}")
    diff = max(float((saved[k].double() - state[k].double()).abs().max()) for k in saved if saved[k].numel())
    largest = max(float(saved[k].abs().max()) for k in saved if saved[k].numel())
    print(f"max |weight difference| after 10 epochs: {diff:.3e} (largest weight {largest:.3g})")


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import torch

    return f"{cpu}, Python {platform.python_version()}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["profile", "throughput", "weights", "step"])
    parser.add_argument("args", nargs="*", help="weights: save|compare PATH")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pyinstrument", type=Path, default=None, help="also write pyinstrument profiles here")
    parser.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    parser.add_argument("--compile-training", action="store_true",
                        help="throughput: each run eager and with compile_training=True, interleaved; "
                             "weights: train with compile_training=True")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.what == "weights":
        weights(args.args[0], Path(args.args[1]), **({"compile_training": True} if args.compile_training else {}))
        return
    print(machine(), flush=True)
    if args.what == "step":
        out = {}
        for config in args.configs:
            for family in args.families:
                out[f"{family} {config}"] = step_ms(family, config)
                print(f"{family} {config}: {out[f'{family} {config}']['median_ms']:.1f} ms a step (median), "
                      f"{out[f'{family} {config}']['best_ms']:.1f} best", flush=True)
    elif args.what == "profile":
        rows = []
        for config in args.configs:
            for family in args.families:
                print(f"profiling {family} on {config} ...", flush=True)
                rows.append(training_profile(family, config, epochs=args.epochs, pyinstrument=args.pyinstrument))
        print("\n".join(profile_table(rows)) + "\n\n" + "\n".join(predict_table(rows)))
        out: Any = rows
    else:
        out = defaultdict(list)
        for k in range(args.rounds):
            modes = [False, True] if args.compile_training else [False]
            runs = [(f, c, m) for c in args.configs for f in args.families for m in modes]
            for family, config, compiled in runs[k % len(runs):] + runs[: k % len(runs)]:
                extra = {"compile_training": True} if compiled else {}
                row = throughput_once(family, config, args.epochs + compiled, **extra)
                label = f"{family} {config}" + (" compiled" if compiled else "")
                print(f"round {k + 1}: {label}: {json.dumps(row)}", flush=True)
                out[label].append(row)
        print("| run | train structures/s (median) | predict structures/s (median) |\n|---|---|---|")
        for key, rows in out.items():
            print(f"| {key} | {np.median([r['train_structures_per_s'] for r in rows]):.1f} | "
                  f"{np.median([r['predict_structures_per_s'] for r in rows]):.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
