"""Training on periodic cells learns: the one periodic learning run in CI.

Every family's learning check on molecules is part of its contract (``FamilyContract.test_learns``
in tests/models/contract.py); this run adds the periodic path of the shared training module
(image shifts, strained cells, the stress loss) on the family that trains fastest, with the
contract's check and its fraction of the zero-force baseline.

Measured with these settings (seeds 0-2, one thread, 9-14 s a run): final val force MAE / zero-force
MAE 0.17-0.30 (zero-force 0.74 eV/Å); the stress MAE, trained but too noisy over seeds to bound
after 8 epochs, is left to the slow accuracy runs of the contract.
"""

from __future__ import annotations

from pathlib import Path

import ase

from physicsml_like import EGNNModel

from ..models.contract import PERIODIC_TARGETS, check_learns, learning_config


def test_egnn_learns_forces_on_periodic_copper(tmp_path: Path, cu_frames: list[ase.Atoms]) -> None:
    config = learning_config(tmp_path, PERIODIC_TARGETS, epochs=8, lr=1e-2, c_hidden=48, num_layers=3, num_rbf=16)
    check_learns(lambda: EGNNModel(config), cu_frames[:100], cu_frames[250:300])
