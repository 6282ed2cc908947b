"""Temporaries left by writers that died (kill -9, out of memory) are removed by the next writer
in the folder; those of live writers, of other hosts, or of names we do not know are kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from physicsml_like import EGNNModel
from physicsml_like._files import _HOST
from physicsml_like.data.cache import CacheWriter
from physicsml_like.training.trainer import AtomicCheckpointIO

from .common import ethanol_split, tiny_fields


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _plant(folder: Path, name: str, hidden: bool) -> dict[str, Path]:
    """A temporary of each kind of writer, as files and folders the writers make."""
    dot = "." if hidden else ""
    dead = _dead_pid()
    names = {
        "dead": f"{dot}{name}.tmp-{_HOST}-{dead}-0123abcd",
        "dead, written before the host was in the name": f"{dot}{name}.tmp-{dead}",
        "dead, old copy of a replaced save": f"{dot}{name}.old-{_HOST}-{dead}-0123abcd",
        "live": f"{dot}{name}.tmp-{_HOST}-{os.getpid()}-0123abcd",
        "other host": f"{dot}{name}.tmp-elsewhere-{dead}-0123abcd",
        "not ours": f"{dot}{name}.tmp-notes",
    }
    folder.mkdir(parents=True, exist_ok=True)
    planted = {}
    for kind, entry in names.items():
        path = folder / entry
        path.mkdir()
        (path / "part.bin").write_bytes(b"x")
        planted[kind] = path
    return planted


def _write_checkpoint(folder: Path) -> None:
    AtomicCheckpointIO().save_checkpoint({"epoch": 0}, folder / "last.ckpt")


def _write_cache(folder: Path) -> None:
    with CacheWriter(folder, "key") as writer:
        writer.append({"atom_ptr": np.array([0, 1])})
        writer.commit()


def _save_model(folder: Path) -> None:
    train, _ = ethanol_split()
    EGNNModel(tiny_fields(folder / "runs", epochs=1)).initialise(train[:8]).save(folder / "model")


@pytest.mark.parametrize(
    ("writer", "name", "hidden"),
    [(_write_checkpoint, "last.ckpt", True), (_write_cache, "key", False), (_save_model, "model", True)],
    ids=["checkpoint", "cache", "saved model"],
)
def test_the_next_writer_removes_only_dead_writers_leftovers(tmp_path: Path, writer, name: str, hidden: bool) -> None:
    folder = tmp_path / "folder"
    planted = _plant(folder, name, hidden)
    writer(folder)
    gone = {kind for kind, path in planted.items() if not path.exists()}
    assert gone == {"dead", "dead, written before the host was in the name", "dead, old copy of a replaced save"}
