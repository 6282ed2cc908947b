"""Fixtures shared by the model-family tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a test file on one torch thread.

    The equivariant families' per-edge tensors (channels x components) sit just above torch's
    grain size, so with two threads nearly every op opens an OpenMP region; on a busy 2-core
    machine each region waits for a descheduled thread (a learning test went from ~10 s to
    2-6 minutes). Models this small gain nothing from a second thread.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
