"""Generalised Clebsch-Gordan coefficients of MACE's product basis (Batatia et al. 2022, eq. 10).

A product of ``nu`` copies of a node's atomic basis ``A`` (irreps ``0e + 1o + 2e + ...``, one copy
of each, dimension ``D``) is coupled to an irrep ``L`` along a *coupling path*: couple the first
two factors to an intermediate irrep, that with the third to another, and so on. Each path gives
a tensor ``U[M, i1, ..., i_nu]`` (``M`` over ``2L + 1``) built from Wigner 3j symbols, and MACE
learns one weight per path and channel. The paths are enumerated without symmetrisation, so
their count is the number of learnable weights of the reference implementation (for
``0e + 1o + 2e`` coupled three times to ``0e``: 11 paths).

Because the factors of ``A ⊗ ... ⊗ A`` are identical, only the part of ``U`` symmetric in
``i1..i_nu`` contributes: :func:`symmetrise` folds ``U`` onto the monomials
``A_i1 A_i2 ... A_inu`` with ``i1 <= i2 <= ... <= i_nu`` (165 instead of 729 terms for
``D = 9, nu = 3``). The network evaluates those monomials once per node and contracts them with
the folded coefficients, which avoids the ``[N, 2L+1, D, ..., D, channels]`` tensors a direct
contraction creates.

Everything here is computed once, in float64, when a network is built.
"""

from __future__ import annotations

import itertools
import math

import torch
from e3nn import o3

__all__ = ["coupling_basis", "monomial_parents", "monomials", "symmetrise"]

# A basis of order 4 keeps only intermediate irreps of "natural" parity (even l even, odd l
# odd) up to l = 11, as the reference implementation does; this fixes its number of paths.
_NATURAL_PARITY_TO_L11 = frozenset(o3.Irrep(degree, (-1) ** degree) for degree in range(12))


def _coupling_paths(
    irreps: o3.Irreps, order: int, keep: frozenset[o3.Irrep] | None
) -> list[tuple[o3.Irrep, torch.Tensor]]:
    """All coupling paths of ``order`` copies of ``irreps``: ``(irrep, U [2l+1, D, ..., D])``;
    every coupled irrep, intermediate or final, must be in ``keep`` (when given)."""
    dim = irreps.dim
    if order == 1:
        paths = []
        eye = torch.eye(dim, dtype=torch.float64)
        for ir, block in zip(irreps, irreps.slices(), strict=True):
            paths.append((ir.ir, eye[block]))
        return paths
    paths = []
    for ir_left, left in _coupling_paths(irreps, order - 1, keep):
        for mul_ir, block in zip(irreps, irreps.slices(), strict=True):
            ir_right = mul_ir.ir
            for ir_out in ir_left * ir_right:
                if keep is not None and ir_out not in keep:
                    continue
                # "component" normalisation: each coupling step scaled by sqrt(2 l_out + 1)
                w3j = o3.wigner_3j(ir_out.l, ir_left.l, ir_right.l, dtype=torch.float64) * math.sqrt(ir_out.dim)
                coupled = torch.einsum("ab,oac->obc", left.reshape(ir_left.dim, -1), w3j)
                full = torch.zeros(ir_out.dim, left[0].numel(), dim, dtype=torch.float64)
                full[:, :, block] = coupled
                paths.append((ir_out, full.reshape(ir_out.dim, *([dim] * order))))
    # stable sort by irrep, so paths of one irrep keep their enumeration order
    return sorted(paths, key=lambda path: path[0])


def coupling_basis(irreps: o3.Irreps | str, order: int, irrep_out: o3.Irrep | str) -> torch.Tensor:
    """Coupling tensors of ``order`` copies of ``irreps`` (each irrep once) to ``irrep_out``.

    Returns ``U`` of shape ``[2L+1, D, ..., D, K]`` (``order`` axes of size ``D``), one slice
    per coupling path; ``K`` may be 0.

    Examples
    --------
    >>> coupling_basis("0e + 1o + 2e", 3, "0e").shape
    torch.Size([1, 9, 9, 9, 11])
    >>> coupling_basis("0e + 1o + 2e", 2, "1o").shape[-1]
    4
    """
    irreps = o3.Irreps(irreps)
    if any(mul != 1 for mul, _ in irreps):
        raise ValueError(f"coupling_basis takes each irrep once, got {irreps}")
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    target = o3.Irrep(irrep_out)
    keep = _NATURAL_PARITY_TO_L11 if order == 4 else None
    tensors = [u for ir, u in _coupling_paths(irreps, order, keep) if ir == target]
    shape = (target.dim, *([irreps.dim] * order))
    if not tensors:
        return torch.zeros(*shape, 0, dtype=torch.float64)
    return torch.stack(tensors, dim=-1)


def monomials(dim: int, order: int) -> list[tuple[int, ...]]:
    """Index tuples ``i1 <= ... <= i_order`` of the degree-``order`` monomials of ``dim`` variables."""
    return list(itertools.combinations_with_replacement(range(dim), order))


def monomial_parents(dim: int, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """How to build the monomials of one order from the previous: ``m[p] = m_prev[parent[p]] * x[last[p]]``.

    Monomials are listed as by :func:`monomials`; ``order`` must be at least 2.
    """
    previous = {index: k for k, index in enumerate(monomials(dim, order - 1))}
    current = monomials(dim, order)
    parent = torch.tensor([previous[index[:-1]] for index in current], dtype=torch.long)
    last = torch.tensor([index[-1] for index in current], dtype=torch.long)
    return parent, last


def symmetrise(u: torch.Tensor) -> torch.Tensor:
    """Fold ``U [M, D, ..., D, K]`` onto monomials: ``[M, P, K]``, summed over index orderings.

    ``sum_i U[m, i1..inu, k] x_i1 ... x_inu == sum_p S[m, p, k] * prod(x[monomials[p]])``.
    """
    order = u.dim() - 2
    dim = u.shape[1]
    index_of = {index: k for k, index in enumerate(monomials(dim, order))}
    flat_to_monomial = torch.tensor(
        [index_of[tuple(sorted(index))] for index in itertools.product(range(dim), repeat=order)], dtype=torch.long
    )
    flat = u.reshape(u.shape[0], dim**order, u.shape[-1])
    folded = torch.zeros(u.shape[0], len(index_of), u.shape[-1], dtype=u.dtype)
    return folded.index_add_(1, flat_to_monomial, flat)
