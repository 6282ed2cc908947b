"""Train one family's small float64 model eagerly and with compile_training=True on the same
batches; print the largest weight difference and the largest weight change as JSON.

    python -m tests.training.scripts.compiled_vs_eager FAMILY ROOT     # from the repository root

Run in a process of its own by the slow tests: a compiler defect that crashes the process is
then a failed test that names the family, not a dead test run."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from physicsml_like.datasets import load_dataset
from physicsml_like.training import get_model_class
from tests.models.test_shared_networks import ARCHITECTURES


def model(family: str, root: Path, compiled: bool) -> Any:
    return get_model_class(f"{family}_model")(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0, "train": {"batch_size": 4}},
        compute_forces=True, model_dtype="float64", compile_training=compiled, **ARCHITECTURES[family],
        losses={"energy": {"weight": 1.0}, "forces": {"weight": 10.0}},
        optimizer={"name": "Adam", "config": {"lr": 1e-2}}, scheduler=None,
        trainer={"max_epochs": 1, "default_root_dir": str(root), "enable_progress_bar": False},
    )


def state(trained: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trained.module.network.state_dict().items()}


def train(family: str, root: Path, compiled: bool) -> dict[str, torch.Tensor]:
    trained = model(family, root, compiled)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        trained.train(load_dataset("ethanol")[:16])
    refused = [str(w.message) for w in caught if "compile_training" in str(w.message)]
    if compiled and refused:
        raise SystemExit(f"{family}: {refused[0]}")
    return state(trained)


def main() -> None:
    family, root = sys.argv[1], Path(sys.argv[2])
    initial = state(model(family, root / "initial", False).initialise(load_dataset("ethanol")[:16]))
    eager, compiled = train(family, root / "eager", False), train(family, root / "compiled", True)
    moved = max(float((v - initial[k]).abs().max()) for k, v in eager.items() if v.is_floating_point() and v.numel())
    difference = max(float((compiled[k] - v).abs().max()) for k, v in eager.items() if v.is_floating_point() and v.numel())
    print(json.dumps({"family": family, "max_weight_difference": difference, "max_weight_change": moved,
                      "max_weight": max(float(v.abs().max()) for v in eager.values() if v.is_floating_point() and v.numel())}))


if __name__ == "__main__":
    main()
