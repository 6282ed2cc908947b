"""Train the tiny EGNN on 2 CPU processes (DDP, gloo), then, on every rank as a user script
does: save, load the saved folder, predict, test and use the ASE calculator; write what this
rank got to ``OUT/rank<r>.json``. Rank 1 then fails on purpose: the command must not exit 0.

    python ddp_after_train.py OUT
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
warnings.filterwarnings("ignore")
torch.set_num_threads(1)

from physicsml_like import EGNNModel, load_model  # noqa: E402
from physicsml_like.datasets import load_dataset  # noqa: E402
from tests.reliability.common import tiny_fields  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    frames = load_dataset("ethanol")
    fields = tiny_fields(out / "runs", epochs=1)
    fields["trainer"].update(accelerator="cpu", devices=2, strategy="ddp")
    model = EGNNModel(fields).train(frames[:32])
    rank = model.trainer.global_rank
    saved = model.save(out / "model")  # every rank: rank 0 writes, rank 1 waits for it
    reloaded = load_model(saved)  # right after save returns, on either rank
    test = frames[40:46]
    predictions = model.predict(test)
    atoms = test[0].copy()
    atoms.calc = model.to_ase_calculator()
    result = {
        "energy": np.asarray(predictions["energy"]).tolist(),
        "forces": np.concatenate(predictions["forces"]).tolist(),
        "reloaded_energy": np.asarray(reloaded.predict(test)["energy"]).tolist(),
        "test": model.test(test),
        "calculator_energy": float(atoms.get_potential_energy()),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    if rank == 1:
        raise RuntimeError("rank 1 fails on purpose after its work")


if __name__ == "__main__":
    main()
