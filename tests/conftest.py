"""Shared fixtures: small slices of the bundled datasets and an isolated cache folder."""

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

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    """A file of the shared reference data, or skip when it is not beside the checkout."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"shared reference data {name} not available")
    return path
