"""Train the tiny EGNN of ``common.tiny_fields`` and kill this process with SIGKILL part-way.

    python killed_training.py ROOT mid_epoch   # in the third epoch, after two of its batches
    python killed_training.py ROOT mid_save    # while last.ckpt of the second epoch is written
"""

import os
import signal
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
warnings.filterwarnings("ignore")
torch.set_num_threads(1)

import lightning as L  # noqa: E402

from physicsml_like import EGNNModel  # noqa: E402
from physicsml_like.training import wrapper  # noqa: E402
from tests.reliability.common import ethanol_split, tiny_fields  # noqa: E402


class KillMidEpoch(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 2 and batch_idx == 2:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_while_saving_last() -> None:
    save = torch.save

    def saving(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 1 and ".last.ckpt.tmp-" in getattr(f, "name", ""):
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return save(obj, f, *args, **kwargs)

    torch.save = saving


def main() -> None:
    root, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "mid_epoch":
        build = wrapper.build_trainer
        wrapper.build_trainer = lambda *a, **k: build(*a, **{**k, "callbacks": [KillMidEpoch()]})
    else:
        kill_while_saving_last()
    train, val = ethanol_split()
    EGNNModel(tiny_fields(root)).train(train, val)
    sys.exit("the run was not killed")


if __name__ == "__main__":
    main()
