"""Train a tiny EGNN for one epoch, on N CPU processes with DDP (gloo) or on one process.

    python ddp_train.py OUT_DIR DEVICES BATCH_SIZE_PER_DEVICE
"""

import sys
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

from physicsml_like import EGNNModel  # noqa: E402
from physicsml_like.datasets import load_dataset  # noqa: E402


def main() -> None:
    out, devices, batch_size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    model = EGNNModel(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0, "train": {"batch_size": batch_size}},
        compute_forces=True,
        c_hidden=16,
        num_layers=2,
        scheduler=None,
        optimizer={"name": "SGD", "config": {"lr": 0.1}},
        trainer={
            "max_epochs": 1, "accelerator": "cpu", "devices": devices,
            "strategy": "ddp" if devices > 1 else "auto",
            "default_root_dir": str(out / "runs"), "enable_progress_bar": False,
        },
    )
    model.train(load_dataset("ethanol")[:64])
    if model.trainer.global_rank == 0:
        model.save(out / "model")


if __name__ == "__main__":
    main()
