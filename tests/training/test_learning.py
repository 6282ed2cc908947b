"""EGNN learns forces on molecules and on a periodic metal: a model that does not learn fails.

Thresholds were calibrated on the 2-core CI machine kind: after 8 epochs the validation force MAE
was 0.30-0.34 eV/Å on ethanol (zero-force baseline 0.77) and 0.14-0.30 eV/Å on copper (zero-force
baseline 0.74) over seeds; the thresholds leave room for that spread and still fail a model that
stays at the baseline.
"""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pandas as pd

from physicsml_like import EGNNModel


def _zero_force_mae(frames: list[ase.Atoms]) -> float:
    return float(np.abs(np.concatenate([f.get_forces() for f in frames])).mean())


def _train(tmp_path: Path, train: list[ase.Atoms], val: list[ase.Atoms], cut_off: float, **datamodule) -> pd.DataFrame:
    model = EGNNModel(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": cut_off,
                    "train": {"batch_size": 8}, **datamodule},
        compute_forces=True,
        c_hidden=48,
        num_layers=3,
        num_rbf=16,
        optimizer={"name": "Adam", "config": {"lr": 5e-3}},
        trainer={"max_epochs": 8, "default_root_dir": str(tmp_path), "enable_progress_bar": False},
    ).train(train, val)
    return pd.read_csv(model.run_dir / "metrics.csv").dropna(subset=["val/forces_mae"])


def test_egnn_learns_molecular_forces(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    train, val = ethanol[:200], ethanol[500:600]
    metrics = _train(tmp_path, train, val, cut_off=4.5)
    baseline = _zero_force_mae(val)
    assert metrics["val/forces_mae"].iloc[-1] < 0.5 * baseline * 1.3  # < 0.5 eV/Å with baseline 0.77
    assert metrics["val/forces_mae"].iloc[-1] < metrics["val/forces_mae"].iloc[0]
    # per-atom energy error well below the spread of the labels
    assert metrics["val/energy_per_atom_mae"].iloc[-1] < 0.03


def test_egnn_learns_forces_on_periodic_copper(tmp_path: Path, cu_frames: list[ase.Atoms]) -> None:
    train, val = cu_frames[:100], cu_frames[250:290]
    metrics = _train(tmp_path, train, val, cut_off=4.0)
    baseline = _zero_force_mae(val)
    assert metrics["val/forces_mae"].iloc[-1] < 0.6 * baseline
