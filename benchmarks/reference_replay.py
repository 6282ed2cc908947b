"""This package's MACE trained from a reference code's initial weights on that code's batches:
does it follow the same trajectory?

    python benchmarks/reference_replay.py                                   # mace-torch, ethanol, seed 0 (~3 min)
    python benchmarks/reference_replay.py --dataset cu --seed 1             # copper (~35 min)
    python benchmarks/reference_replay.py --reference physicsml             # physicsml, ethanol

The reference comparison (``reference_comparison.py``) trains each code from its own random
initial weights in its own random batch order, so its accuracies differ by the spread over
seeds. This removes both: the reference code (mace-torch or physicsml) trains once, recording
its initial weights, the structures of every batch and its weights after every epoch
(``reference/record_mace_torch.py``, ``reference/record_physicsml.py``, each in the code's own
environment); then this package's MACE, configured as in the comparison, gets those initial
weights (``reference/mace_torch_weights.py``) and those batches and trains through its usual
``model.train``. Equal architecture, loss, optimiser and data handling give equal weights up to
float32 rounding, epoch after epoch, and the same test errors; any difference in any of them
shows up as a divergence.

Writes ``benchmarks/results/reference_replay.md`` (one section per code, dataset and seed,
others kept). Run with this package's Python; the reference environments are the comparison's.
"""

from __future__ import annotations

import argparse
import json
import sys
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_comparison as rc  # also puts benchmarks/reference on the path
from _common import prediction_errors, read_frames
from mace_torch_weights import load_mace_torch_state, physicsml_as_mace_torch
from run_ours import build_model, labelled

RESULTS = rc.BENCHMARKS / "results" / "reference_replay.md"
RECORDER = {"mace-torch": "record_mace_torch.py", "physicsml": "record_physicsml.py"}
INIT_COMPARED = 1000
"""Smallest tensor whose initial RMS is compared: smaller ones vary too much from draw to draw."""
TABLE = {"cu": "mace_cu", "ethanol": "mace_ethanol"}


def record(reference: str, dataset: str, seed: int, epochs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the reference code once, recording; the job and its result."""
    rc.install(reference)
    data = rc.write_dataset(dataset, "full")
    table = next(t for t in rc.TABLES if t.key == TABLE[dataset])
    job = rc.training_job(table, reference, data, "full", epochs, seed)
    job["workdir"] = str(rc.WORK / "replay" / f"{reference}-{dataset}-seed{seed}")
    result = rc.run_job(reference, job, runner=RECORDER[reference])
    if result.get("error"):
        raise SystemExit(f"{reference}'s recorded run failed: {result['error']}")
    return job, result


def _relative_differences(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> tuple[float, float, str]:
    """Relative difference of all weights together, the largest of any one tensor, and its name."""
    squared = sum(float((ours[k] - theirs[k]).double().square().sum()) for k in ours)
    total = sum(float(theirs[k].double().square().sum()) for k in ours)
    worst = max(ours, key=lambda k: float((ours[k] - theirs[k]).norm() / theirs[k].norm().clamp_min(1e-30)))
    largest = float((ours[worst] - theirs[worst]).norm() / theirs[worst].norm().clamp_min(1e-30))
    return (squared / total) ** 0.5, largest, worst


def replay(reference: str, job: dict[str, Any], recorded: dict[str, np.ndarray]) -> dict[str, Any]:
    """Train this package's model from the recorded weights on the recorded batches."""
    import lightning as L

    from physicsml_like.data.sampler import EpochBatchSampler
    from physicsml_like.models import MACEModel
    from physicsml_like.models.mace.network import build_mace
    from physicsml_like.training import wrapper

    torch.set_num_threads(rc.THREADS)
    initial = {k.removeprefix("initial:"): torch.from_numpy(np.asarray(v)) for k, v in recorded.items() if k.startswith("initial:")}
    trainable = json.loads(str(recorded["trainable"]))
    orders = recorded["order"]
    every_structure_once = all(np.array_equal(np.sort(o), np.arange(job["n_train"])) for o in orders)
    if len(orders) != job["epochs"] or not every_structure_once:
        raise SystemExit("the recorded epochs do not each hold every training structure once; cannot replay them")

    def load(network: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        if reference == "physicsml":
            load_mace_torch_state(network, physicsml_as_mace_torch(state), paths_by_output=False, complete=False)
        else:
            load_mace_torch_state(network, state)

    def their_weights(network: torch.nn.Module, epoch: int) -> dict[str, torch.Tensor]:
        """The reference's weights after ``epoch``, in this package's layout."""
        state = {**initial, **{name: torch.from_numpy(recorded[f"epoch{epoch}:{name}"]) for name in trainable}}
        copy = deepcopy(network)
        load(copy, state)
        return {n: p.detach().clone() for n, p in copy.named_parameters()}

    initial_rms: dict[str, tuple[float, float, int]] = {}  # tensor: (own initialisation, the reference's, size)

    def rms(network: torch.nn.Module) -> dict[str, tuple[float, int]]:
        return {n: (float(p.detach().double().square().mean().sqrt()), p.numel()) for n, p in network.named_parameters() if p.requires_grad}

    def build_from_their_weights(config: Any, spec: Any, statistics: Any) -> torch.nn.Module:
        network = build_mace(config, spec, statistics)
        own = rms(network)  # this package's own random draw, to compare the distributions
        load(network, initial)
        initial_rms.update({n: (own[n][0], r, size) for n, (r, size) in rms(network).items()})
        mine = sum(p.numel() for p in network.parameters() if p.requires_grad)
        theirs = sum(initial[name].numel() for name in trainable)
        if mine != theirs:
            raise SystemExit(f"this network has {mine} trainable weights, {reference}'s {theirs}")
        return network

    def their_order(sampler: EpochBatchSampler, epoch: int) -> np.ndarray:
        if not sampler.shuffle:  # validation and prediction keep their order
            return np.arange(sampler.num_items, dtype=np.int64)
        return orders[epoch].astype(np.int64)

    per_epoch: list[dict[str, Any]] = []

    class Compare(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            network = module.network
            ours = {n: p.detach().clone() for n, p in network.named_parameters()}
            overall, largest, name = _relative_differences(ours, their_weights(network, trainer.current_epoch))
            per_epoch.append({"epoch": trainer.current_epoch + 1, "all": overall, "largest": largest, "tensor": name})
            print(f"epoch {trainer.current_epoch + 1}: relative weight difference {overall:.2e} (largest {largest:.2e}, {name})", flush=True)

    build_trainer, order = wrapper.build_trainer, EpochBatchSampler.order
    MACEModel.build_network = staticmethod(build_from_their_weights)  # type: ignore[assignment]
    EpochBatchSampler.order = their_order  # type: ignore[method-assign,assignment]
    wrapper.build_trainer = lambda *a, **k: build_trainer(*a, callbacks=[Compare()], **k)  # type: ignore[assignment]
    try:
        model = build_model(job)
        train, validation, test = (read_frames(job[split]) for split in ("train", "validation", "test"))
        model.train(labelled(train), labelled(validation))
        predictions = model.predict(labelled(test))
    finally:
        MACEModel.build_network = staticmethod(build_mace)  # type: ignore[assignment]
        EpochBatchSampler.order = order  # type: ignore[method-assign]
        wrapper.build_trainer = build_trainer
    errors = prediction_errors(test, predictions["energy"], np.concatenate(predictions["forces"]))
    return {"per_epoch": per_epoch, "errors": errors, "initial_rms": initial_rms,
            "statistics": {"scale": model.module.energy_target.scale, "avg_num_neighbours": float(model.module.network.avg_num_neighbours)}}


def section(reference: str, dataset: str, seed: int, job: dict[str, Any], theirs: dict[str, Any], ours: dict[str, Any],
            recorded: dict[str, np.ndarray]) -> str:
    """The markdown section of one replay."""
    lines = [f"## {reference}: {dataset}, seed {seed}", ""]
    lines.append(f"Run {rc.machine()['date']}. {job['n_train']} training structures, {job['epochs']} epochs of {len(recorded['order'][0]) // job['batch_size']} "
                 f"batches; {reference}'s per-atom scale {float(np.ravel(recorded['scale'])[0]):.6g} and neighbour normaliser "
                 f"{float(recorded['avg_num_neighbours']):.6g}, this package's {ours['statistics']['scale']:.6g} and "
                 f"{ours['statistics']['avg_num_neighbours']:.6g}.")
    large = [own / reference_rms for own, reference_rms, size in ours["initial_rms"].values() if size >= INIT_COMPARED]
    lines.append(f"Initial weights: this package's own random initialisation against {reference}'s, per-tensor RMS ratio "
                 f"{min(large):.3f}-{max(large):.3f} over the {len(large)} tensors of at least {INIT_COMPARED} values "
                 f"(one draw's RMS varies by about 1/sqrt(2n), 2% at {INIT_COMPARED}).")
    lines += ["", "| after epoch | relative difference, all weights | largest for one tensor | that tensor (this package's name) |",
              "|---|---|---|---|"]
    for row in ours["per_epoch"]:
        lines.append(f"| {row['epoch']} | {row['all']:.2e} | {row['largest']:.2e} | `{row['tensor']}` |")
    lines += ["", "| test split | energy MAE (meV/atom) | force MAE (meV/Å) |", "|---|---|---|"]
    for name, errors in ((reference, theirs), ("physicsml_like, replayed", ours["errors"])):
        lines.append(f"| {name} | {errors['energy_mae_meV_per_atom']:.4f} | {errors['forces_mae_meV_per_A']:.4f} |")
    return "\n".join(lines) + "\n"


def write(reference: str, dataset: str, seed: int, text: str) -> None:
    """Replace this run's section of the results file, keep the others."""
    sections: dict[str, str] = {}
    if RESULTS.exists():
        for chunk in RESULTS.read_text().split("\n## ")[1:]:
            sections[chunk.split("\n", 1)[0]] = "## " + chunk.rstrip() + "\n"
    sections[f"{reference}: {dataset}, seed {seed}"] = text
    machine = rc.machine()
    versions = ", ".join(f"{code} {rc.version(code)}" for code in RECORDER)
    head = [
        "# Reference trainings replayed in this package",
        "",
        "Written by `benchmarks/reference_replay.py`: this package's MACE starts from a reference code's initial "
        "weights and trains on that code's batches, in the reference comparison's settings (see "
        "`reference_comparison.md`). The differences are float32 rounding carried through training. The "
        "largest are in the order-3 product weights: their coupling paths are redundant once the product is "
        "symmetrised (11 paths for 5 independent invariants to `0e`, 21 for 5 to `1o`), so some combinations "
        "of them change no output and rounding noise alone moves them. physicsml forms its batches once and "
        "shuffles only their order between epochs; the replay gives this package those batches in that order.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, threads {machine['threads']}; Python {machine['python']}, "
        f"torch {machine['torch']}, e3nn {machine['e3nn']}; {versions}.",
        "",
    ]
    RESULTS.write_text("\n".join(head) + "\n" + "\n".join(sections[k] for k in sorted(sections)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(TABLE), default="ethanol")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--reference", choices=sorted(RECORDER), default="mace-torch")
    args = parser.parse_args()
    job, theirs = record(args.reference, args.dataset, args.seed, args.epochs)
    recorded = dict(np.load(Path(job["workdir"]) / "record.npz"))
    ours = replay(args.reference, job, recorded)
    write(args.reference, args.dataset, args.seed, section(args.reference, args.dataset, args.seed, job, theirs, ours, recorded))
    print(f"{args.reference} test force MAE {theirs['forces_mae_meV_per_A']:.4f}, replayed here "
          f"{ours['errors']['forces_mae_meV_per_A']:.4f} meV/Å; written to {RESULTS}")


if __name__ == "__main__":
    main()
