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
    Train TensorNet on bundled ethanol and ANI on bundled copper (about a minute on 2 CPU cores),
    printing each epoch, then the validation errors next to the zero-force baseline.

``physicsml-like models [NAME]``
    List the model families; with a name, the options of that family (type, default, meaning).

``physicsml-like --version``
    The package version.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_TRAIN_KEYS = {"name", "config", "train_data", "validation_data", "test_data", "ckpt_path", "save_to"}
_OUTPUT_SUFFIXES = (".csv", ".parquet", ".json")
_TRAIN_HELP = """keys of the YAML file:
  name             model family, e.g. mace_model (list them: physicsml-like models)
  config           the family's options (physicsml-like models NAME), with the shared sections
                   datamodule, trainer, optimizer, scheduler, loss, ...
  train_data       data file (extended XYZ, CSV, Parquet, ...), relative to the YAML file
  validation_data  optional: validation data file
  test_data        optional: test data file; its metrics are printed at the end
  ckpt_path        optional: a checkpoint to resume from, or "last"
  save_to          optional: folder where the trained model is saved

example:
  name: egnn_model
  config: {compute_forces: true, datamodule: {y_graph_scalars: [energy], y_node_vector: forces}}
  train_data: train.extxyz
  validation_data: val.extxyz
"""


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
    from .data.tables_io import write_frame
    from .training.wrapper import load_model

    out = Path(args.output)
    _check_output(out)
    model = load_model(args.model_dir)
    # a model trained on_disk would build its cache in the saved config's cache_dir: predict
    # writes only the output, so that cache lives in a temporary folder removed afterwards
    with tempfile.TemporaryDirectory(prefix="physicsml_like_predict_") as cache:
        on_disk = model.config.datamodule.pre_batch == "on_disk"
        frame = model.predict(args.data, as_dataframe=True, datamodule_config={"cache_dir": cache} if on_disk else None)
    write_frame(frame, out)  # per-atom arrays and vectors: lists in the cells
    print(f"{len(frame)} predictions written to {out}")
    return 0


class _EpochPrinter:
    """One line per epoch: the losses and validation errors so far, and the time it took."""

    def __init__(self, name: str, start: float) -> None:
        self.name, self.start = name, start
        self.epoch_start = start

    def callback(self) -> Any:
        import lightning as L

        printer = self

        class EpochPrinter(L.Callback):
            def on_train_start(self, trainer: Any, module: Any) -> None:
                print(f"  graphs built in {time.perf_counter() - printer.start:.1f} s (with the model set up); "
                      f"training {trainer.max_epochs} epochs", flush=True)

            def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
                printer.epoch_start = time.perf_counter()

            def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
                printer.line(trainer.current_epoch + 1, trainer.max_epochs, trainer.callback_metrics)

        return EpochPrinter()

    def line(self, epoch: int, epochs: int, metrics: dict[str, Any]) -> None:
        m = {k: float(v) for k, v in metrics.items()}
        parts = [f"  epoch {epoch:>2}/{epochs}", f"loss {m.get('train/loss', float('nan')):.4g}"]
        if "val/energy_per_atom_mae" in m:
            parts.append(f"val energy {m['val/energy_per_atom_mae'] * 1000:.2f} meV/atom")
        if "val/forces_mae" in m:
            parts.append(f"forces {m['val/forces_mae'] * 1000:.0f} meV/Å")
        parts.append(f"({time.perf_counter() - self.epoch_start:.1f} s)")
        print("  ".join(parts), flush=True)


# the best family of each bundled dataset at equal budget (benchmarks/results/families.md)
_DEMO_CASES: list[dict[str, Any]] = [
    {
        "title": "ethanol (GFN2-xTB)", "dataset": "ethanol", "n_train": 400, "n_val": 100,
        "family": "tensornet_model", "label": "TensorNet, 32 features, 2 layers",
        "fields": {"num_features": 32, "num_interaction_layers": 2}, "datamodule": {"cut_off": 5.0},
    },
    {
        "title": "copper (EMT, periodic)", "dataset": "cu_emt", "n_train": 200, "n_val": 50,
        "family": "ani_model", "label": "ANI, radial 4.5 Å, angular 3.5 Å",
        "fields": {"which_ani": None, "aev": {"angular_cutoff": 3.5}, "compute_stress": True},
        "datamodule": {"cut_off": 4.5, "y_stress": "stress"},
    },
]


def _demo_case(case: dict[str, Any], epochs: int, root: Path) -> dict[str, Any]:
    """Train one family on one bundled dataset, printing as it goes; its validation errors."""
    from .datasets import load_dataset
    from .training.registry import get_model_class

    frames = load_dataset(case["dataset"])
    train, val = frames[: case["n_train"]], frames[case["n_train"] : case["n_train"] + case["n_val"]]
    print(f"{case['title']}: {case['label']}; {len(train)} train / {len(val)} validation structures", flush=True)
    start = time.perf_counter()
    printer = _EpochPrinter(case["title"], start)
    model = get_model_class(case["family"])(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "train": {"batch_size": 8},
                    **case["datamodule"]},
        compute_forces=True,
        optimizer={"name": "Adam", "config": {"lr": 5e-3}},
        trainer={"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False},
        **case["fields"],
    )
    model.train(train, val, callbacks=[printer.callback()])
    assert model.trainer is not None, "train() keeps its trainer"
    metrics = {k: float(v) for k, v in model.trainer.callback_metrics.items()}
    metrics["zero_force"] = float(np.abs(np.concatenate([f.get_forces() for f in val])).mean())
    metrics["seconds"] = time.perf_counter() - start
    print(f"  done in {metrics['seconds']:.0f} s\n", flush=True)
    return metrics


def _demo(args: argparse.Namespace) -> int:
    """TensorNet on bundled ethanol (molecule) and ANI on bundled copper (periodic, with stress)."""
    import logging
    import tempfile
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="physicsml_like_demo_"))
    print(f"physicsml_like {_version()} demo: {args.epochs} epochs per model\n", flush=True)
    rows = [(case, _demo_case(case, args.epochs, root)) for case in _DEMO_CASES]
    print("Validation errors")
    header = (f"{'dataset':<24} {'model':<11} {'energy MAE':>15} {'forces MAE':>12} "
              f"{'zero-force MAE':>15} {'stress MAE':>13} {'time':>6}")
    print(header)
    print("-" * len(header))
    for case, m in rows:
        stress = f"{m['val/stress_mae'] * 1000:.2f} meV/Å³" if "val/stress_mae" in m else "-"
        print(f"{case['title']:<24} {case['family'].removesuffix('_model'):<11} "
              f"{m['val/energy_per_atom_mae'] * 1000:>6.2f} meV/atom {m['val/forces_mae'] * 1000:>6.0f} meV/Å "
              f"{m['zero_force'] * 1000:>9.0f} meV/Å {stress:>13} {m['seconds']:>5.0f}s")
    print(f"\nruns (checkpoints, metrics.csv): {root}")
    return 0


def _version() -> str:
    from ._version import __version__

    return __version__


def _models(args: argparse.Namespace) -> int:
    """The families, or one family's options (its own fields; the shared sections are common)."""
    from .config.model import ModelConfig
    from .training.registry import available_models, get_model_class

    if args.name is None:
        for name in available_models():
            try:
                doc = " ".join((get_model_class(name).config_class.__doc__ or "").split())
            except (ImportError, AttributeError) as err:  # an installed plugin that is broken
                doc = f"(cannot be loaded: {err})"
            print(f"  {name:<18} {_first_sentence(doc)}")
        print("\noptions of one family: physicsml-like models NAME")
        return 0
    config_class = get_model_class(args.name).config_class
    shared = set(ModelConfig.model_fields)
    own = {k: f for k, f in config_class.model_fields.items() if k not in shared or args.all}
    print(f"{args.name}: {' '.join((config_class.__doc__ or '').split())}\n")
    for field_name, field in own.items():
        print(f"  {field_name}: {_type_text(field.annotation)} = {_default_text(field)}")
        if field.description:
            print(f"      {' '.join(field.description.split())}")
    if not args.all:
        print(f"\nshared sections (with --all): {', '.join(sorted(shared))}")
    return 0


def _first_sentence(text: str, width: int = 90) -> str:
    import textwrap

    return textwrap.shorten(text, width, placeholder=" …")


def _type_text(annotation: Any) -> str:
    import re

    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    return re.sub(r"[\w.]+\.(\w+)", r"\1", text)


def _default_text(field: Any) -> str:
    if field.is_required():
        return "(required)"
    if field.default_factory is not None:
        return "(a section: see --all)" if hasattr(field.default_factory, "model_fields") else repr(field.default_factory())
    return repr(field.default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="physicsml-like", description="Train and use 3D atomistic ML models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train", help="train the model a YAML config describes", epilog=_TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the model a YAML file describes; print its metrics (and save it with save_to).",
    )
    train.add_argument("config", help="YAML file with name, config, train_data (and optional keys below)")
    train.set_defaults(func=_train)
    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model_dir")
    predict.add_argument("data", help="any data source path (extended XYZ, CSV of SMILES, ...)")
    predict.add_argument("-o", "--output", default="predictions.csv")
    predict.set_defaults(func=_predict)
    demo = sub.add_parser("demo", help="train small models on bundled datasets and print their errors")
    demo.add_argument("--epochs", type=int, default=10)
    demo.add_argument("--root", default=None, help="folder for the runs (default: a temporary folder)")
    demo.set_defaults(func=_demo)
    models = sub.add_parser("models", help="list the model families, or one family's options")
    models.add_argument("name", nargs="?", default=None, help="a family, e.g. mace_model")
    models.add_argument("--all", action="store_true", help="also the shared sections (datamodule, trainer, ...)")
    models.set_defaults(func=_models)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError, ImportError) as err:  # configuration, data, file and missing-extra errors: one line
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
