"""Inputs that are almost surely mistakes are named with their numbers: a cutoff giving thousands
of neighbours per atom, atoms at the same position, a ``train`` call that trains nothing; and
the option that makes each an error."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import ase
import pytest

from physicsml_like import ConfigError, DataError, EGNNModel
from physicsml_like.data.datamodule import GraphDataModule

from .common import ethanol_split, tiny_fields


def _build(frames: list[ase.Atoms], **config: object) -> None:
    GraphDataModule({"y_graph_scalars": ["energy"], **config}, train_data=frames, progress=False).setup("fit")


def _warnings_of(frames: list[ase.Atoms], **config: object) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _build(frames, **config)
    return [str(w.message) for w in caught]


def test_a_cutoff_far_too_large_is_named_with_neighbours_and_memory(cu_frames: list[ase.Atoms]) -> None:
    assert not [m for m in _warnings_of(cu_frames[:3], cut_off=5.0) if "neighbours per atom" in m]
    (message,) = [m for m in _warnings_of(cu_frames[:3], cut_off=30.0) if "neighbours per atom" in m]
    mean = float(re.search(r"gives ([\d,]+) neighbours per atom", message)[1].replace(",", ""))
    assert 9000 < mean < 11000, message  # 32-atom copper cells of about 7 Å
    assert re.search(r"[\d.]+ GB of packed edges", message) and "a batch of 32 structures" in message
    with pytest.raises(DataError, match="neighbours per atom") as err:
        _build(cu_frames[:3], cut_off=30.0, input_checks="error")
    assert err.value.field == "cut_off"


def test_atoms_at_the_same_position_are_named_by_frame_and_atoms(ethanol: list[ase.Atoms]) -> None:
    frames = [atoms.copy() for atoms in ethanol[:6]]
    for copy, atoms in zip(frames, ethanol[:6], strict=True):
        copy.info["energy"] = atoms.get_potential_energy()
    assert not [m for m in _warnings_of(frames, cut_off=4.0) if "apart" in m]
    frames[4].positions[7] = frames[4].positions[3]
    (message,) = [m for m in _warnings_of(frames, cut_off=4.0) if "apart" in m]
    assert "frame 4: atoms 3 and 7 are 0.000 Å apart" in message and "min_distance=0.5" in message
    with pytest.raises(DataError, match="frame 4: atoms 3 and 7") as err:
        _build(frames, cut_off=4.0, input_checks="error")
    assert err.value.field == "positions"
    assert not [m for m in _warnings_of(frames, cut_off=4.0, min_distance=None) if "apart" in m]


def test_a_train_call_that_trains_nothing_says_so(tmp_path: Path) -> None:
    train, _ = ethanol_split()
    with pytest.warns(UserWarning, match=r"nothing was trained: 0 optimiser steps \(trainer.max_epochs=0"):
        EGNNModel(tiny_fields(tmp_path, epochs=0)).train(train[:16])
    with pytest.raises(ConfigError, match="nothing was trained"):
        EGNNModel(tiny_fields(tmp_path, epochs=0, trainer={"max_epochs": 0, "if_nothing_trained": "error",
                                                          "default_root_dir": str(tmp_path)})).train(train[:16])
    model = EGNNModel(tiny_fields(tmp_path, epochs=1)).train(train[:16])
    last = model.run_dir / "checkpoints" / "last.ckpt"
    with pytest.warns(UserWarning, match=rf"nothing was trained.*{re.escape(str(last))} is already at epoch 0"):
        EGNNModel(tiny_fields(tmp_path, epochs=1)).train(train[:16], ckpt_path=last)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        EGNNModel(tiny_fields(tmp_path, epochs=1)).train(train[:16], ckpt_path=last, trainer_config={"max_epochs": 2})
    assert not [w for w in caught if "nothing was trained" in str(w.message)]
