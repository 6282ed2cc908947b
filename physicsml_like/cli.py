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
    Predict with a saved model; ``.csv``, ``.parquet`` or ``.json`` by the output's suffix. It
    writes the output file and nothing else (a model trained ``on_disk`` gets a temporary cache),
    and checks that the output can be written before predicting.

Errors in the input (a YAML syntax error, a bad config field, a damaged model folder, bad data)
end in one line naming the file and the field, with exit code 2.

``physicsml-like demo``
    Train small models on bundled datasets (a couple of minutes on 2 CPU cores) and print the
    validation errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_TRAIN_KEYS = {"name", "config", "train_data", "validation_data", "test_data", "ckpt_path", "save_to"}
_OUTPUT_SUFFIXES = (".csv", ".parquet", ".json")


def _read_yaml(path: str) -> Any:
    """The YAML document in ``path``; a syntax error names the file, line and column."""
    import yaml

    from .config.base import ConfigError

    text = Path(path).read_text()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error at {where}: {problem}") from None


def _train(args: argparse.Namespace) -> int:
    from .config.base import ConfigError
    from .training.registry import load_from_dict

    spec = _read_yaml(args.config)
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


def _check_output(out: Path) -> None:
    """Fail before predicting, not after, when the output cannot be written."""
    from .config.base import ConfigError

    if out.suffix not in _OUTPUT_SUFFIXES:
        raise ConfigError(f"-o {out}: the output's suffix must be one of {list(_OUTPUT_SUFFIXES)}")
    if out.is_dir():
        raise ConfigError(f"-o {out}: is a folder; give a file name")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"-o {out}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise PermissionError(f"-o {out}: the folder {out.parent} is not writable")
    if out.suffix == ".parquet":
        import importlib.util

        if not any(importlib.util.find_spec(engine) for engine in ("pyarrow", "fastparquet")):
            raise ConfigError(f"-o {out}: writing parquet needs `pip install pyarrow`")


def _predict(args: argparse.Namespace) -> int:
    from .training.wrapper import load_model

    out = Path(args.output)
    _check_output(out)
    model = load_model(args.model_dir)
    # a model trained on_disk would build its cache in the saved config's cache_dir: predict
    # writes only the output, so that cache lives in a temporary folder removed afterwards
    with tempfile.TemporaryDirectory(prefix="physicsml_like_predict_") as cache:
        on_disk = model.config.datamodule.pre_batch == "on_disk"
        frame = model.predict(args.data, as_dataframe=True, datamodule_config={"cache_dir": cache} if on_disk else None)
    for column in frame.columns:
        if frame[column].dtype == object:  # per-atom arrays and vectors: JSON lists in the cell
            frame[column] = [json.dumps(np.asarray(v).tolist()) for v in frame[column]]
    if out.suffix == ".parquet":
        frame.to_parquet(out)
    elif out.suffix == ".json":
        frame.to_json(out, orient="records", lines=False)
    else:
        frame.to_csv(out, index=False)
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
    except (ValueError, OSError) as err:  # configuration, data and file errors: one clear line
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
