"""torch's own ``index_select`` while metatensor scripts its functions.

torch_geometric replaces ``torch.index_select`` by a Python function (for its hash tensors) that
TorchScript cannot compile, and metatensor scripts functions calling it when it is imported and
when a model is saved: :func:`unpatched_index_select` puts torch's own back meanwhile.
"""

import contextlib
import sys
from collections.abc import Iterator

import torch

__all__ = ["unpatched_index_select"]


@contextlib.contextmanager
def unpatched_index_select() -> Iterator[None]:
    """Within the block, ``torch.index_select`` is torch's own (restored afterwards)."""
    original = getattr(sys.modules.get("torch_geometric.hash_tensor"), "_old_index_select", None)
    patched = torch.index_select
    if original is not None:
        torch.index_select = original
    try:
        yield
    finally:
        torch.index_select = patched
