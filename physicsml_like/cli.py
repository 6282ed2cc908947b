"""Command line.

``physicsml-like train config.yaml``
    Train the model a YAML file describes::

        name: egnn_model
        config: {compute_forces: true, datamodule: {y_graph_scalars: [energy], y_node_vector: forces}}
        train_data: train.extxyz
        validation_data: val.extxyz      # optional
        test_data: test.extxyz           # optional: metrics printed at the end
        ckpt_path: last                  # optional: resume
        save_to: models/egnn             # optional: where the trained model is saved

``physicsml-like predict MODEL_DIR DATA -o predictions.csv``
    Predict with a saved model; ``.csv``, ``.parquet`` or ``.json`` by the output's suffix.

``physicsml-like demo``
    Train small models on bundled datasets (a couple of minutes on 2 CPU cores) and print the
    validation errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

_TRAIN_KEYS = {"name", "config", "train_data", "validation_data", "test_data", "ckpt_path", "save_to"}


def _train(args: argparse.Namespace) -> int:
    import yaml

    from .config.base import ConfigError
    from .training.registry import load_from_dict

    spec = yaml.safe_load(Path(args.config).read_text())
    if not isinstance(spec, dict):
        raise ConfigError(f"{args.config}: expected a mapping with 'name', 'config' and 'train_data'")
    unknown = set(spec) - _TRAIN_KEYS
    if unknown:
        raise ConfigError(f"{args.config}: unknown keys {sorted(unknown)}; allowed: {sorted(_TRAIN_KEYS)}")
    if "train_data" not in spec:
        raise ConfigError(f"{args.config}: 'train_data' is required")
    base = Path(args.config).resolve().parent

    def data_path(key: str) -> Any:
        value = spec.get(key)
        return str((base / value).resolve()) if isinstance(value, str) else value

    model = load_from_dict({"name": spec["name"], "config": spec.get("config") or {}})
    model.train(data_path("train_data"), data_path("validation_data"), ckpt_path=spec.get("ckpt_path"))
    print(f"run folder: {model.run_dir}")
    assert model.trainer is not None, "train() keeps its trainer"
    metrics = {k: float(v) for k, v in model.trainer.callback_metrics.items() if k.endswith(("_mae", "_rmse", "loss"))}
    if spec.get("test_data"):
        metrics.update(model.test(data_path("test_data")))
    _print_metrics(metrics)
    if spec.get("save_to"):
        print(f"saved to {model.save(base / spec['save_to'])}")
    return 0


def _print_metrics(metrics: dict[str, float]) -> None:
    width = max((len(k) for k in metrics), default=10)
    for key in sorted(metrics):
        print(f"  {key:<{width}}  {metrics[key]:.5g}")


def _predict(args: argparse.Namespace) -> int:
    from .data.tables_io import write_frame
    from .training.wrapper import load_model

    model = load_model(args.model_dir)
    frame = model.predict(args.data, as_dataframe=True)
    out = write_frame(frame, args.output)  # per-atom arrays and vectors: lists in the cells
    print(f"{len(frame)} predictions written to {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Train EGNN on bundled ethanol (molecule) and copper (periodic, with stress)."""
    import logging
    import tempfile
    import warnings

    from .datasets import load_dataset
    from .models import EGNNModel

    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    epochs = args.epochs
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="physicsml_like_demo_"))
    rows = []
    cases: list[tuple[str, list[Any], int, dict[str, Any], dict[str, Any]]] = [
        ("ethanol (GFN2-xTB)", load_dataset("ethanol"), 400, {"cut_off": 4.5}, {}),
        ("copper (EMT, periodic)", load_dataset("cu_emt"), 200, {"cut_off": 4.0, "y_stress": "stress"}, {"compute_stress": True}),
    ]
    for name, frames, n_train, datamodule, extra in cases:
        train, val = frames[:n_train], frames[n_train : n_train + 100]
        model = EGNNModel(
            datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "train": {"batch_size": 8}, **datamodule},
            compute_forces=True,
            c_hidden=48,
            num_layers=3,
            num_rbf=16,
            optimizer={"name": "Adam", "config": {"lr": 5e-3}},
            trainer={"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False},
            **extra,
        )
        t0 = time.perf_counter()
        model.train(train, val)
        seconds = time.perf_counter() - t0
        assert model.trainer is not None, "train() keeps its trainer"
        metrics = {k: float(v) for k, v in model.trainer.callback_metrics.items()}
        zero_force = float(np.abs(np.concatenate([f.get_forces() for f in val])).mean())
        rows.append((name, len(train), len(val), seconds, metrics, zero_force))
        print(f"trained on {name}: {len(train)} structures, {epochs} epochs, {seconds:.0f} s", flush=True)
    print()
    print("Validation errors (EGNN, 48 channels, 3 layers)")
    header = f"{'dataset':<24} {'energy/atom MAE':>16} {'energy MAE':>11} {'forces MAE':>11} {'zero-force MAE':>15} {'stress MAE':>11}"
    print(header)
    print("-" * len(header))
    for name, _, _, _, m, zero in rows:
        stress = f"{m['val/stress_mae'] * 1000:.2f}" if "val/stress_mae" in m else "-"
        print(f"{name:<24} {m['val/energy_per_atom_mae'] * 1000:>12.1f} meV {m['val/energy_mae'] * 1000:>7.0f} meV "
              f"{m['val/forces_mae']:>7.3f} eV/Å {zero:>11.3f} eV/Å {stress:>7} meV/Å³")
    print(f"\nruns (checkpoints, metrics.csv): {root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="physicsml-like", description="Train and use 3D atomistic ML models.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the model a YAML config describes")
    train.add_argument("config", help="YAML file with name, config, train_data (and optional keys)")
    train.set_defaults(func=_train)
    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model_dir")
    predict.add_argument("data", help="any data source path (extended XYZ, CSV of SMILES, ...)")
    predict.add_argument("-o", "--output", default="predictions.csv")
    predict.set_defaults(func=_predict)
    demo = sub.add_parser("demo", help="train small models on bundled datasets and print their errors")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--root", default=None, help="folder for the runs (default: a temporary folder)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as err:  # configuration and data errors: one clear line
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
