"""Scatter reductions on plain torch (``index_add_`` / ``scatter_reduce``): no compiled extensions."""

from __future__ import annotations

import torch

__all__ = ["scatter_mean", "scatter_sum"]


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum rows of ``src`` ``[E, ...]`` into ``dim_size`` rows by ``index`` ``[E]``."""
    out = src.new_zeros((dim_size, *src.shape[1:]))
    return out.index_add_(0, index, src)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Mean of the rows of ``src`` per index (empty groups give zero)."""
    total = scatter_sum(src, index, dim_size)
    count = torch.bincount(index, minlength=dim_size).clamp(min=1).to(src.dtype)
    return total / count.view(-1, *([1] * (src.dim() - 1)))
