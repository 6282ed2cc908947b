"""Small, fast model settings shared by the training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ETHANOL_TARGETS = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0}
CU_TARGETS = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress", "cut_off": 4.0}


def tiny_egnn(root: Path, *, datamodule: dict[str, Any] | None = None, epochs: int = 2, **fields: Any) -> dict[str, Any]:
    """Config fields of a small EGNN that trains in seconds."""
    config: dict[str, Any] = {
        "datamodule": {**ETHANOL_TARGETS, "train": {"batch_size": 8}, **(datamodule or {})},
        "compute_forces": True,
        "c_hidden": 16,
        "num_layers": 2,
        "num_rbf": 8,
        "trainer": {"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False},
        "optimizer": {"name": "Adam", "config": {"lr": 3e-3}},
    }
    config.update(fields)
    return config
