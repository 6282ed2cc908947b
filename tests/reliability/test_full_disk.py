"""A full disk (a 20 MB tmpfs, mounted when the tests run as root): saving over a model, building
a cache and checkpointing fail with the disk's error and leave what was there intact, with no
temporaries behind."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from physicsml_like import EGNNModel, load_model
from physicsml_like.data.datamodule import GraphDataModule

from .common import ethanol_split, tiny_fields


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; run the suite as root to test a full disk")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Fill the disk to the last byte; return the filler file (delete it to free the space)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for block in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    handle.write(b"\0" * block)
            except OSError as err:
                assert err.errno == errno.ENOSPC
    return filler


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp-" in p.name or ".old-" in p.name)


def test_a_full_disk_fails_cleanly_and_keeps_what_was_there(small_disk: Path) -> None:
    train, val = ethanol_split()
    model = EGNNModel(tiny_fields(small_disk / "runs", epochs=1)).train(train[:16])
    saved = model.save(small_disk / "model")
    before = load_model(saved).predict(val)["energy"]
    filler = _fill(small_disk)

    # saving over the model: the disk's error, and the old folder still loads and predicts as before
    with pytest.raises(OSError) as err:
        model.train(train[:16])  # its checkpoints cannot be written either
    assert err.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as err:
        model.save(saved)
    assert err.value.errno == errno.ENOSPC
    np.testing.assert_array_equal(load_model(saved).predict(val)["energy"], before)

    # an on-disk cache: the disk's error, no half-written cache
    config = {"y_graph_scalars": ["energy"], "cut_off": 4.0, "pre_batch": "on_disk", "cache_dir": str(small_disk / "caches")}
    with pytest.raises(OSError) as err:
        GraphDataModule(config, train_data=train, progress=False).prepare_data()
    assert err.value.errno == errno.ENOSPC
    assert _leftovers(small_disk) == []
    assert not [p for p in (small_disk / "caches").iterdir()]

    # with space again, everything works
    filler.unlink()
    dm = GraphDataModule(config, train_data=train, progress=False)
    dm.setup("fit")
    assert dm.num_structures("train") == len(train)
    model.save(saved)
    assert _leftovers(small_disk) == []
    shutil.rmtree(small_disk / "caches")
