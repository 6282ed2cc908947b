"""Whether the forward pass is being recorded as a fixed graph of operations.

Two recorders meet the networks: ``torch.jit.trace`` (the TorchScript export) and ``make_fx``
(the compiled AOTInductor export, :mod:`physicsml_like.integrations.aoti`). Both keep one branch
and one loop count of the structure they record, so code that picks a kernel by size, loops over
chunks of edges in Python or calls a Python autograd function takes its plain-operation path
while :func:`is_capturing` is true."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_depth = 0


def is_capturing() -> bool:
    """True inside ``torch.jit.trace`` and inside :func:`capturing`."""
    return _depth > 0 or torch.jit.is_tracing()


@contextmanager
def capturing() -> Iterator[None]:
    """Record-mode for the duration of a ``make_fx`` (or other) capture; nests."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
