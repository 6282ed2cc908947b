"""Plots return figures with the numbers users look for."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
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
