"""One representative edge per bond, so that MACE evaluates functions of the distance once a bond.

A full neighbour list holds each bond twice (``i -> j`` and ``j -> i``, with exactly opposite
vectors); a function of the distance alone, such as the radial MLP, needs evaluating once per
bond. Training differentiates twice (forces, then the loss on forces), so every per-edge tensor
saved for the backward pass stays alive for the whole step: halving the radial MLP's rows halves
its share of the memory.
"""

from __future__ import annotations

import torch

__all__ = ["reverse_pairs"]


def reverse_pairs(edge_index: torch.Tensor, edge_vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One representative edge per bond: ``(representatives [U], bond_of_edge [E])``.

    Edges ``i -> j`` and ``j -> i`` whose vectors are exact negatives (bit for bit, as the
    training module builds them) form one bond; every other edge is a bond of its own, so the
    result is always correct and at worst saves nothing. Because the two edges of a bond have
    the same length as a function of the positions, a radial function evaluated on the
    representative has the right derivatives for both.

    Examples
    --------
    >>> vectors = torch.tensor([[1.0, 0.0, 0.0], [-1.0, -0.0, -0.0], [0.0, 2.0, 0.0]])
    >>> reverse_pairs(torch.tensor([[0, 1, 0], [1, 0, 2]]), vectors)
    (tensor([0, 2]), tensor([0, 0, 1]))
    """
    i, j = edge_index
    vectors = edge_vectors.detach()
    # orient each bond one way: from the lower atom index; a self-image (i == j) so that its
    # first non-zero component is positive
    first_nonzero = torch.argmax((vectors != 0).to(torch.int8), dim=1, keepdim=True)
    negative_first = vectors.gather(1, first_nonzero).squeeze(1) < 0
    flip = (i > j) | ((i == j) & negative_first)
    oriented = torch.where(flip.unsqueeze(1), -vectors, vectors) + 0.0  # + 0.0 turns -0.0 into 0.0
    # the atom count as a tensor, not int(...): a traced model keeps it per call
    pair = torch.minimum(i, j) * (edge_index.max() + 1 if i.numel() else 1) + torch.maximum(i, j)
    # keys: the pair, then the oriented vector's components (compared as values: after the
    # + 0.0 equal values are equal bits; a bit view of the floats would not trace)
    keys = [pair, *oriented.unbind(1)]
    # lexicographic order by stable sorts from the last key to the first (sorting rows with
    # torch.unique(dim=0) is slow); equal keys are then adjacent
    n_edges = edge_index.shape[1]
    order = torch.arange(n_edges, device=edge_index.device)
    for key in keys[::-1]:
        order = order[torch.sort(key[order], stable=True).indices]
    starts = torch.zeros(n_edges, dtype=torch.bool, device=edge_index.device)
    starts[:1] = True
    for key in keys:
        ordered = key[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    bond_of_edge = torch.empty_like(order)
    bond_of_edge[order] = torch.cumsum(starts, dim=0) - 1
    representatives = order[starts]
    return representatives, bond_of_edge
