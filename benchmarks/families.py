"""Accuracy and speed of every family on the bundled molecule and metal sets, at equal budget.

    python benchmarks/families.py                      # all families, writes benchmarks/results/families.md
    python benchmarks/families.py --families mace_model painn_model --epochs 10

Each family trains with its settings below (comparable sizes, the same data, epochs, batch size,
optimiser and loss weights) on

- ethanol (GFN2-xTB, 9 atoms): 400 train / 100 validation / 100 test frames, cutoff 5 Å;
- copper (EMT, 31-32 atoms, periodic, own cell per frame): 200 / 50 / 50, cutoff 4.5 Å, with stress.

Reported: test energy MAE per atom, test force MAE, test stress MAE (copper), training
structures/s (whole epochs, validation excluded), prediction structures/s, trainable parameters
and the peak resident memory of the process that trained (one process per family and dataset).
Two torch threads, no worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "families.md"

# comparable, moderate sizes for each family
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "egnn_model": {"c_hidden": 64, "num_layers": 3, "num_rbf": 16},
    "mace_model": {"hidden_irreps": "32x0e + 32x1o", "max_ell": 2, "correlation": 3, "num_interactions": 2,
                   "mlp_irreps": "16x0e", "num_bessel": 8, "num_polynomial_cutoff": 5},
    "nequip_model": {"num_layers": 3, "num_features": 32, "max_ell": 2},
    "allegro_model": {"num_layers": 2, "max_ell": 2, "env_embed_multiplicity": 16},
    "ani_model": {},
    "tensornet_model": {"num_features": 32, "num_layers": 2},
    "painn_model": {"num_features": 64, "num_layers": 3},
}
DATASETS = {
    "ethanol": {"train": 400, "val": 100, "test": 100, "cut_off": 5.0, "stress": False},
    "cu_emt": {"train": 200, "val": 50, "test": 50, "cut_off": 4.5, "stress": True},
}


def run_one(family: str, dataset: str, epochs: int, out: Path) -> None:
    """Train one family on one dataset in this process and write its numbers as JSON."""
    import numpy as np
    import torch

    from physicsml_like.datasets import load_dataset
    from physicsml_like.training import get_model_class

    torch.set_num_threads(2)
    spec = DATASETS[dataset]
    frames = load_dataset(dataset)
    n_train, n_val, n_test = spec["train"], spec["val"], spec["test"]
    train, val, test = frames[:n_train], frames[n_train : n_train + n_val], frames[n_train + n_val : n_train + n_val + n_test]
    datamodule: dict[str, Any] = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": spec["cut_off"],
                                  "train": {"batch_size": 8}}
    extra: dict[str, Any] = {}
    if spec["stress"]:
        datamodule["y_stress"] = "stress"
        extra["compute_stress"] = True
    architecture = dict(ARCHITECTURES[family])
    if family == "ani_model":
        datamodule["cut_off"] = 5.2 if dataset == "ethanol" else spec["cut_off"]
        architecture = {"which_ani": "ani1"} if dataset == "ethanol" else {"which_ani": None, "aev": {"angular_cutoff": 3.5}}
    with tempfile.TemporaryDirectory() as root:
        model = get_model_class(family)(
            datamodule=datamodule, compute_forces=True, **extra, **architecture,
            optimizer={"name": "Adam", "config": {"lr": 5e-3}},
            trainer={"max_epochs": epochs, "default_root_dir": root, "enable_progress_bar": False,
                     "num_sanity_val_steps": 0},
        )
        t0 = time.perf_counter()
        model.train(train, val)
        train_seconds = time.perf_counter() - t0
        import pandas as pd

        log = pd.read_csv(model.run_dir / "metrics.csv")
        t0 = time.perf_counter()
        predictions = model.predict(test)
        predict_seconds = time.perf_counter() - t0
    labels_e = np.array([f.get_potential_energy() for f in test])
    atoms = np.array([len(f) for f in test])
    forces = np.concatenate([f.get_forces() for f in test])
    result = {
        "family": family,
        "dataset": dataset,
        "epochs": epochs,
        "energy_mae_per_atom_meV": float(np.mean(np.abs(predictions["energy"] - labels_e) / atoms)) * 1000,
        "forces_mae_meV_per_A": float(np.mean(np.abs(np.concatenate(predictions["forces"]) - forces))) * 1000,
        "zero_force_mae_meV_per_A": float(np.mean(np.abs(forces))) * 1000,
        "train_structures_per_s": n_train * epochs / train_seconds,
        "train_seconds": train_seconds,
        "predict_structures_per_s": n_test / predict_seconds,
        "parameters": sum(p.numel() for p in model.module.network.parameters() if p.requires_grad),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "validation_rows": int(log["val/forces_mae"].notna().sum()) if "val/forces_mae" in log else 0,
    }
    if spec["stress"]:
        stress = np.array([f.get_stress(voigt=False) for f in test])
        result["stress_mae_meV_per_A3"] = float(np.mean(np.abs(predictions["stress"] - stress))) * 1000
    out.write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="*", default=list(ARCHITECTURES))
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", nargs=3, metavar=("FAMILY", "DATASET", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], args.one[1], args.epochs, Path(args.one[2]))
        return
    rows = []
    for dataset in args.datasets:
        for family in args.families:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
                target = Path(handle.name)
            print(f"{family} on {dataset} ...", flush=True)
            done = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs), "--one", family, dataset, str(target)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr[-3000:])
                rows.append({"family": family, "dataset": dataset, "error": done.stderr.strip().splitlines()[-1][:120]})
                continue
            rows.append(json.loads(target.read_text()))
            target.unlink()
            print(f"  {rows[-1]}", flush=True)
    import torch

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, torch {torch.__version__}, 2 torch threads"
    lines = ["# Families benchmark", "", f"Machine: {machine}  ", f"Date: {time.strftime('%Y-%m-%d')}  ",
             f"Command: `python benchmarks/families.py --epochs {args.epochs}`", "",
             "Settings: batch 8, Adam lr 5e-3 with cosine decay, default losses (energy per atom, forces, stress x10), float32; "
             "architectures as in `ARCHITECTURES` in the script.", ""]
    for dataset in args.datasets:
        spec = DATASETS[dataset]
        lines += [f"## {dataset} ({spec['train']} train / {spec['val']} validation / {spec['test']} test, cutoff {spec['cut_off']} Å, {args.epochs} epochs)", "",
                  "| family | energy MAE (meV/atom) | force MAE (meV/Å) | " + ("stress MAE (meV/Å³) | " if spec["stress"] else "")
                  + "train (structures/s) | predict (structures/s) | parameters | peak RSS (MB) |",
                  "|---|---|---|" + ("---|" if spec["stress"] else "") + "---|---|---|---|"]
        zero = None
        for row in rows:
            if row["dataset"] != dataset:
                continue
            if "error" in row:
                lines.append(f"| {row['family']} | failed: {row['error']} |")
                continue
            zero = row["zero_force_mae_meV_per_A"]
            stress = f"{row['stress_mae_meV_per_A3']:.2f} | " if spec["stress"] else ""
            lines.append(f"| {row['family']} | {row['energy_mae_per_atom_meV']:.2f} | {row['forces_mae_meV_per_A']:.0f} | {stress}"
                         f"{row['train_structures_per_s']:.1f} | {row['predict_structures_per_s']:.0f} | {row['parameters']:,} | {row['peak_rss_mb']:.0f} |")
        if zero is not None:
            lines += ["", f"Zero-force baseline on the test set: {zero:.0f} meV/Å.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
