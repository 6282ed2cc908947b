"""Readouts shared by every family: pooling per-atom values into structures, and the dipole.

Networks return per-atom quantities; the targets turn them into per-structure ones with these
functions, so the arithmetic of a pooled scalar or a dipole exists once.
"""

from __future__ import annotations

from typing import Literal

import torch

from .scatter import scatter_mean, scatter_sum

__all__ = ["Pooling", "dipole_moment", "pool"]

Pooling = Literal["sum", "mean"]


def pool(values: torch.Tensor, batch: torch.Tensor, num_graphs: int, how: Pooling = "sum") -> torch.Tensor:
    """Per-atom ``values [N, ...]`` -> per-structure ``[B, ...]`` by sum or mean.

    Examples
    --------
    >>> pool(torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([0, 0, 1]), 2, "mean").tolist()
    [[1.5], [4.0]]
    """
    if how == "sum":
        return scatter_sum(values, batch, num_graphs)
    if how == "mean":
        return scatter_mean(values, batch, num_graphs)
    raise ValueError(f"pooling must be 'sum' or 'mean', got {how!r}")


def dipole_moment(
    charges: torch.Tensor, atomic_dipoles: torch.Tensor, positions: torch.Tensor, batch: torch.Tensor, num_graphs: int
) -> torch.Tensor:
    """``sum_i q_i (r_i - centroid) + mu_i`` per structure: ``[N, 1]``, ``[N, 3]``, ``[N, 3]`` -> ``[B, 3]``.

    Positions are taken about each structure's centroid, so the dipole does not change when the
    structure moves, even when the predicted charges do not add up to zero.
    """
    centroid = scatter_mean(positions, batch, num_graphs)[batch]
    return scatter_sum(charges * (positions - centroid) + atomic_dipoles, batch, num_graphs)
