"""Plots of a model's quality: parity per target, learning curves, error distributions.

Every function returns the matplotlib ``Figure`` (nothing is shown or saved for you).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["error_distribution", "learning_curves", "parity_plot", "parity_plots", "read_metrics"]

_UNITS = {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å³", "charges": "e", "dipole": "e·Å"}


def _flat(values: Any) -> np.ndarray:
    if isinstance(values, list):
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values]) if values else np.zeros(0)
    return np.asarray(values, dtype=np.float64).reshape(-1)


def parity_plot(
    labels: Any,
    predictions: Any,
    name: str = "",
    unit: str | None = None,
    ax: Any = None,
    atoms_per_structure: Any = None,
) -> Any:
    """Predicted against true values with the identity line, on equal axes; the title gives
    the MAE and the number of points, the legend the MAE and RMSE.

    ``labels`` and ``predictions`` may be arrays or lists of per-structure arrays (flattened).
    With ``atoms_per_structure``, structure values (energies) are divided by the atom count, so
    structures of different sizes compare: the name and unit become per atom.
    """
    import matplotlib.pyplot as plt

    y, p = _flat(labels), _flat(predictions)
    if y.shape != p.shape:
        raise ValueError(f"{name or 'values'}: {y.size} labels but {p.size} predictions")
    unit = unit if unit is not None else _UNITS.get(name, "")
    if atoms_per_structure is not None:
        counts = np.asarray(atoms_per_structure, dtype=np.float64).reshape(-1)
        if counts.shape != y.shape:
            raise ValueError(f"{name or 'values'}: {y.size} values but {counts.size} atom counts")
        y, p = y / counts, p / counts
        name, unit = f"{name} per atom".strip(), f"{unit}/atom" if unit else "per atom"
    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(4.2, 4.2))
    mae = float(np.mean(np.abs(p - y)))
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    suffix = f" {unit}" if unit else ""
    ax.scatter(y, p, s=6, alpha=0.6, label=f"MAE {mae:.3g}{suffix}\nRMSE {rmse:.3g}{suffix}")
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    pad = 0.04 * (hi - lo) or 1e-9
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"true {name} ({unit})" if unit else f"true {name}")
    ax.set_ylabel(f"predicted {name} ({unit})" if unit else f"predicted {name}")
    ax.set_title(f"{name}: MAE {mae:.3g}{suffix}, n = {y.size}")
    ax.legend(loc="upper left", frameon=False)
    return figure if figure is not None else ax.figure


def parity_plots(model: Any, data: Any, targets: Sequence[str] | None = None) -> Any:
    """One parity plot per target of ``model`` on labelled ``data`` (any supported source)."""
    import matplotlib.pyplot as plt

    from .data.sources import read_table

    config = model._require_module().config
    kinds = config.target_kinds()
    names = list(targets) if targets is not None else list(kinds)
    table = read_table(data, config.datamodule)
    predictions = model.predict(data)
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        per_atom = None
        if name in table.graph_labels:
            labels: Any = table.graph_labels[name]
            per_atom = table.atoms_per_structure if kinds[name] == "energy" else None
        elif name in table.node_labels:
            labels = table.node_labels[name]
        else:
            raise KeyError(f"no labels for {name!r} in the data")
        parity_plot(labels, predictions[name], name=name, ax=ax, atoms_per_structure=per_atom)
    figure.tight_layout()
    return figure


def read_metrics(run: Any) -> Any:
    """A run's ``metrics.csv`` as a DataFrame, one row per epoch (train and validation merged).

    ``run`` is a model (its last run), a run folder or the CSV path.
    """
    import pandas as pd

    path = Path(getattr(run, "run_dir", run))
    if path.is_dir():
        path = path / "metrics.csv"
    frame = pd.read_csv(path)
    if "epoch" not in frame:
        return frame
    epoch_columns = [c for c in frame.columns if not c.endswith("_step") and c not in ("step",)]
    return frame[epoch_columns].groupby("epoch").mean(numeric_only=True).reset_index()


def learning_curves(run: Any, metrics: Sequence[str] | None = None, log_scale: bool = True) -> Any:
    """Training and validation metrics per epoch from a run's CSV log.

    ``metrics`` are names without the split (``"loss"``, ``"forces_mae"``); default: the loss and
    every MAE logged for validation (or training, without validation).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    frame = read_metrics(run)
    if metrics is None:
        split = "val" if any(c.startswith("val/") for c in frame.columns) else "train"
        metrics = ["loss"] + sorted(c.split("/", 1)[1] for c in frame.columns if c.startswith(f"{split}/") and c.endswith("_mae"))
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        for split in ("train", "val"):
            column = f"{split}/{name}"
            if column in frame:
                rows = frame[["epoch", column]].dropna()
                ax.plot(rows["epoch"], rows[column], marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_metric_label(name))
        if log_scale:
            ax.set_yscale("log")
        ax.legend(frameon=False)
    figure.tight_layout()
    return figure


def _metric_label(name: str) -> str:
    """``forces_mae`` -> ``forces MAE (eV/Å)``; the loss has no unit (a weighted sum)."""
    target, _, statistic = name.rpartition("_")
    if statistic not in ("mae", "rmse"):
        return name
    unit = "eV/atom" if target == "energy_per_atom" else _UNITS.get(target, "")
    label = f"{target.replace('_', ' ')} {statistic.upper()}"
    return f"{label} ({unit})" if unit else label


def error_distribution(labels: Any, predictions: Any, name: str = "", unit: str | None = None, bins: int = 50) -> Any:
    """Histogram of prediction errors with their mean and spread."""
    import matplotlib.pyplot as plt

    errors = _flat(predictions) - _flat(labels)
    unit = unit if unit is not None else _UNITS.get(name, "")
    figure, ax = plt.subplots(figsize=(4.8, 3.6))
    ax.hist(errors, bins=bins, alpha=0.8)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel(f"error in {name} ({unit})" if unit else f"error in {name}")
    ax.set_ylabel("count")
    ax.set_title(f"mean {errors.mean():.3g}, std {errors.std():.3g}")
    figure.tight_layout()
    return figure
