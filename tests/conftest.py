"""Shared fixtures: small slices of the bundled datasets, an isolated cache folder, and the
shared reference data beside the checkout (skipped, naming the paths looked for, when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One torch thread by default. The test models are tiny: their per-edge tensors sit just above
# torch's grain size, so with two threads nearly every op opens an OpenMP region, and on a busy
# 2-core machine each region waits for a descheduled thread (a MACE learning test took 68 s on two
# threads and 8 s on one). Set PHYSICSML_LIKE_TEST_THREADS to use more.
torch.set_num_threads(max(1, int(os.environ.get("PHYSICSML_LIKE_TEST_THREADS", "1"))))


def _checkout_roots() -> list[Path]:
    """The checkout as the file system names it and, when the shell reached it through a
    symlink, as the shell names it: ``Path.resolve`` (and pytest) follow symlinks, so a checkout
    linked into a folder beside ``shared/`` would not find ``shared/`` from its real path."""
    real = Path(__file__).resolve().parents[1]
    roots = [real]
    logical = os.environ.get("PWD")
    if logical:
        for folder in (Path(logical), *Path(logical).parents):
            if folder.resolve() == real:
                roots.append(folder)
                break
    return roots


def shared_data_folders() -> list[Path]:
    """Where the shared reference data is looked for: ``$PHYSICSML_LIKE_SHARED_DATA`` when set,
    else ``shared/data`` beside the checkout (``../shared/data`` from its root)."""
    given = os.environ.get("PHYSICSML_LIKE_SHARED_DATA")
    if given:
        return [Path(given)]
    return list(dict.fromkeys(root.parent / "shared" / "data" for root in _checkout_roots()))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache folder; nothing is written to the user's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PHYSICSML_LIKE_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def ethanol():
    from physicsml_like.datasets import load_dataset

    return load_dataset("ethanol")


@pytest.fixture(scope="session")
def small_molecules():
    from physicsml_like.datasets import load_dataset

    return load_dataset("small_molecules")


@pytest.fixture(scope="session")
def cu_frames():
    from physicsml_like.datasets import load_dataset

    return load_dataset("cu_emt")


@pytest.fixture(scope="session")
def cu_slab():
    from physicsml_like.datasets import load_dataset

    return load_dataset("cu_slab")


def shared_data(name: str) -> Path:
    """A file of the shared reference data; the test skips, naming every path it looked for,
    when the data is not there."""
    looked = [folder / name for folder in shared_data_folders()]
    for path in looked:
        if path.is_file():
            return path
    where = " or ".join(str(path) for path in looked)
    pytest.skip(f"shared reference data {name} not found at {where} (set PHYSICSML_LIKE_SHARED_DATA to its folder)")
