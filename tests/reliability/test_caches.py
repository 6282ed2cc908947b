"""On-disk caches under faults: a build killed with SIGKILL is never read and its folder goes at
the next build; builders racing on one cache agree and leave one folder."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import numpy as np

from physicsml_like.data.datamodule import GraphDataModule
from physicsml_like.datasets import load_dataset

from .common import run_script, start_script

CONFIG = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0}


def _digest(arrays) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _built(cache_dir: Path, **config: object) -> GraphDataModule:
    dm = GraphDataModule({**CONFIG, **config, "cache_dir": str(cache_dir)}, train_data=load_dataset("ethanol")[:200], progress=False)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_a_cache_build_killed_mid_write_is_rebuilt_never_read(tmp_path: Path) -> None:
    cache_dir = tmp_path / "caches"
    killed = run_script("build_cache.py", cache_dir, "kill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (leftover,) = cache_dir.iterdir()
    assert ".tmp-" in leftover.name and (leftover / "atomic_numbers.bin").stat().st_size > 0
    assert not (leftover / "manifest.json").exists()

    dm = _built(cache_dir, pre_batch="on_disk")
    (folder,) = cache_dir.iterdir()
    assert folder.name == dm.split_arrays("train").path.name, "rebuilt, and the dead build's folder removed"
    in_memory = _built(tmp_path / "unused", pre_batch="in_memory")
    assert _digest(dm.split_arrays("train")) == _digest(in_memory.split_arrays("train"))


def test_concurrent_builders_agree_and_leave_one_cache(tmp_path: Path) -> None:
    cache_dir, go = tmp_path / "caches", tmp_path / "go"
    builders = [start_script("build_cache.py", cache_dir, go) for _ in range(2)]
    go.touch()  # both are imported and waiting: they build at the same time
    results = []
    for builder in builders:
        out, err = builder.communicate(timeout=300)
        assert builder.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0] == results[1]
    assert [p.name for p in cache_dir.iterdir()] == [results[0]["folder"]]
    reference = _built(tmp_path / "unused", pre_batch="in_memory")
    assert results[0]["digest"] == _digest(reference.split_arrays("train"))
