"""Plots return figures with the numbers users look for."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from physicsml_like import EGNNModel, plot

from ..training.helpers import tiny_egnn


def test_parity_learning_curves_and_errors(tmp_path: Path, ethanol) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=2)).train(ethanol[:24], ethanol[30:40])
    figure = plot.parity_plots(model, ethanol[30:40])
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    legend = figure.axes[1].get_legend().get_texts()[0].get_text()
    assert legend.startswith("MAE") and "RMSE" in legend and "eV/Å" in legend
    curves = plot.learning_curves(model)
    assert isinstance(curves, Figure)
    labels = {line.get_label() for ax in curves.axes for line in ax.get_lines()}
    assert {"train", "val"} <= labels
    metrics = plot.read_metrics(model)
    assert list(metrics["epoch"]) == [0, 1] and "val/forces_mae" in metrics
    errors = plot.error_distribution(np.zeros(10), np.linspace(-1, 1, 10), name="energy")
    assert "mean" in errors.axes[0].get_title()


def test_parity_plot_title_equal_axes_and_per_atom_energies() -> None:
    labels = np.array([-90.0, -180.0, -270.0])
    predictions = labels + np.array([0.3, -0.6, 0.9])
    atoms = np.array([3, 6, 9])
    figure = plot.parity_plot(labels, predictions, name="energy", atoms_per_structure=atoms)
    ax = figure.axes[0]
    # 0.1 eV/atom off each: the per-atom MAE, not the 0.6 eV of whole structures
    assert ax.get_title() == "energy per atom: MAE 0.1 eV/atom, n = 3"
    assert ax.get_xlabel() == "true energy per atom (eV/atom)"
    assert ax.get_xlim() == ax.get_ylim() and ax.get_aspect() == 1.0
    x = ax.collections[0].get_offsets()[:, 0]
    np.testing.assert_allclose(x, [-30.0, -30.0, -30.0])
    forces = plot.parity_plot([np.ones((2, 3))], [np.ones((2, 3)) * 1.5], name="forces")
    assert forces.axes[0].get_title() == "forces: MAE 0.5 eV/Å, n = 6"


def test_learning_curves_have_units_and_integer_epochs(tmp_path: Path) -> None:
    rows = [{"epoch": e, "step": e, "train/loss": 1.0 / (e + 1), "val/loss": 1.2 / (e + 1),
             "val/forces_mae": 0.5 / (e + 1), "val/energy_per_atom_mae": 0.05 / (e + 1)} for e in range(3)]
    pd.DataFrame(rows).to_csv(tmp_path / "metrics.csv", index=False)
    figure = plot.learning_curves(tmp_path)
    ylabels = [ax.get_ylabel() for ax in figure.axes]
    assert ylabels == ["loss", "energy per atom MAE (eV/atom)", "forces MAE (eV/Å)"]
    for ax in figure.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
