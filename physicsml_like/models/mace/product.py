"""MACE's product basis: higher body-order features from powers of the atomic basis.

For each output irrep ``L`` and channel ``c``, with ``A = A_i[:, c]`` (irreps ``0e+1o+2e+...``)::

    B[M, c] = sum_{nu=1..correlation} sum_k w_nu[element, k, c] sum_{i1..inu} U_nu[M, i1..inu, k] A_i1 ... A_inu

``U_nu`` are the generalised Clebsch-Gordan coefficients of :mod:`.coupling`. Products of
``nu`` copies of ``A`` carry body order ``nu + 1``; a layer with correlation 3 sees four-body
terms at once. Here the sum over ``i1..inu`` runs over monomials (``i1 <= ... <= inu``), built
one order from the previous, and only the monomials with a non-zero coefficient are kept.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from e3nn import o3
from torch import nn

from ...nn.capture import is_capturing
from ...nn.equivariant import uniform_channels
from .coupling import coupling_basis, monomial_parents, symmetrise
from .linear import IrrepsLinear

__all__ = ["AtomElements", "ProductBasisBlock", "SymmetricContraction"]

_ZERO = 1e-10


class AtomElements(NamedTuple):
    """Which element each atom is, for the per-element weights of the contraction."""

    species: torch.Tensor
    """``[N]`` element index of each atom."""
    groups: list[torch.Tensor] | None
    """Atom indices of each element, or ``None`` while captured: a recorded graph cannot hold
    sizes that depend on the data (how many atoms each element has), so the contraction then
    gathers each atom's weights instead."""

    @classmethod
    def of(cls, species: torch.Tensor, num_elements: int) -> AtomElements:
        if is_capturing():
            return cls(species, None)
        return cls(species, [torch.nonzero(species == e).flatten() for e in range(num_elements)])


def _nonzero_rows(coefficients: torch.Tensor) -> torch.Tensor:
    """``[P]`` mask of the monomials with a non-zero coefficient in ``[M, P, K]``."""
    return coefficients.abs().amax(dim=(0, 2)) > _ZERO


def _block_diagonal(dim: int, blocks: list[torch.Tensor]) -> torch.Tensor:
    """``[M, sum P, sum K]`` with the ``[M, P, K]`` blocks on the diagonal."""
    out = torch.zeros(dim, sum(b.shape[1] for b in blocks), sum(b.shape[2] for b in blocks), dtype=torch.float64)
    row = col = 0
    for block in blocks:
        out[:, row : row + block.shape[1], col : col + block.shape[2]] = block
        row, col = row + block.shape[1], col + block.shape[2]
    return out


_BROADCAST_ELEMENTS = (1 << 20, 1 << 22)
"""Largest ``P * N * (2L+1) * c`` contracted by broadcasting: for ``L > 0`` and for ``L = 0``
(4 and 16 MB in float32)."""


def _contract(chosen: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_p chosen[p, n, c] * weights[p, m, c]`` -> ``[N, m, c]``: a channel-wise contraction.

    Small inputs take one broadcast product and a sum; CPU ``bmm`` over the channels runs one
    tiny matrix product per channel. A training step of one product layer (forward, force
    gradient, double backward; 3 elements, 32 channels, 1 thread) took 15.2 ms with ``bmm`` and
    10.7 ms broadcast at 72 atoms; at 288 atoms ``bmm`` was faster for ``L = 1`` (58 against
    62 ms) and broadcasting still for ``L = 0`` (12 against 18 ms), hence two limits. Large
    inputs, and traces (which keep the branch of their example), take ``bmm``, whose memory does
    not grow with the number of paths."""
    p, n, c = chosen.shape
    m = weights.shape[1]
    limit = _BROADCAST_ELEMENTS[1] if m == 1 else _BROADCAST_ELEMENTS[0]
    if not is_capturing() and p * n * m * c <= limit:
        return (chosen.unsqueeze(2) * weights.unsqueeze(1)).sum(0)
    # contiguous operands: bmm on the permuted views was up to 2x slower (float64, 108 atoms)
    out = torch.bmm(chosen.permute(2, 1, 0).contiguous(), weights.permute(2, 0, 1).contiguous())  # [c, N, m]
    return out.permute(1, 2, 0)


class _MonomialChain:
    """The monomials to evaluate, order by order, and how to build each from the previous order.

    ``used[nu]`` marks the monomials of order ``nu + 1`` some output needs; their factors of lower
    order are needed too. Order 1 is the input itself. ``parents[nu - 2]``, ``lasts[nu - 2]``:
    monomial ``p`` of order ``nu`` is ``previous[parent[p]] * x[last[p]]`` (indices within the
    kept monomials); ``columns[nu - 1]``: column of each monomial of order ``nu`` in the
    concatenation of the kept monomials of all orders (-1 if not kept).
    """

    def __init__(self, dim: int, used: list[torch.Tensor]) -> None:
        correlation = len(used)
        needed = [mask.clone() for mask in used]
        needed[0][:] = True
        links = [monomial_parents(dim, nu) for nu in range(2, correlation + 1)]
        for nu in range(correlation, 1, -1):  # a needed monomial needs its parent
            parent, _ = links[nu - 2]
            needed[nu - 2][parent[needed[nu - 1]]] = True
        kept = [torch.nonzero(mask).flatten() for mask in needed]
        local = []  # monomial index -> position among the kept ones of its order
        for mask, indices in zip(needed, kept, strict=True):
            position = torch.full((mask.numel(),), -1, dtype=torch.long)
            position[indices] = torch.arange(len(indices))
            local.append(position)
        self.parents = [local[nu - 2][links[nu - 2][0][kept[nu - 1]]] for nu in range(2, correlation + 1)]
        self.lasts = [links[nu - 2][1][kept[nu - 1]] for nu in range(2, correlation + 1)]
        offsets = [sum(len(k) for k in kept[:nu]) for nu in range(correlation)]
        self.columns = [torch.where(position >= 0, position + offset, position) for position, offset in zip(local, offsets, strict=True)]


class SymmetricContraction(nn.Module):
    """Weighted sum of the symmetric powers of the atomic basis, coupled to each output irrep.

    Shapes: ``x [N, D_in, c]`` -> ``[N, D_out, c]``. The weights ``w_nu`` have shape
    ``[num_elements, K, c]`` for each output irrep and order ``nu`` (``K`` coupling paths), drawn
    from ``N(0, 1) / K`` as in the reference.

    Examples
    --------
    >>> SymmetricContraction(o3.Irreps("4x0e + 4x1o + 4x2e"), o3.Irreps("4x0e"), correlation=3, num_elements=1)
    SymmetricContraction(4x0e+4x1o+4x2e -> 4x0e | correlation=3, paths 0e:[1, 3, 11] | 60 weights)
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, correlation: int, num_elements: int) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.correlation = int(correlation)
        self.num_elements = int(num_elements)
        if self.correlation < 1:
            raise ValueError(f"correlation must be at least 1, got {correlation}")
        self.channels = uniform_channels(self.irreps_in, "the atomic-basis irreps")
        if uniform_channels(self.irreps_out, "the product irreps") != self.channels:
            raise ValueError(f"the product keeps the channels: {self.irreps_in} -> {self.irreps_out}")
        coupling = o3.Irreps([(1, ir) for _, ir in self.irreps_in])

        # folded coefficients per output irrep and order: [2L+1, P_nu, K] (P_nu monomials)
        folded = [
            [symmetrise(coupling_basis(coupling, nu, ir)) for nu in range(1, self.correlation + 1)]
            for _, ir in self.irreps_out
        ]
        self.num_paths = [[s.shape[-1] for s in per_order] for per_order in folded]
        used = [
            torch.stack([_nonzero_rows(per_order[nu]) for per_order in folded]).any(dim=0)
            for nu in range(self.correlation)
        ]
        chain = _MonomialChain(coupling.dim, used)
        for nu in range(2, self.correlation + 1):
            self.register_buffer(f"parent_{nu}", chain.parents[nu - 2], persistent=False)
            self.register_buffer(f"last_{nu}", chain.lasts[nu - 2], persistent=False)

        dtype = torch.get_default_dtype()
        self.weights = nn.ParameterList()
        self._outputs: list[tuple[int, list[int]]] = []  # (irrep dim, indices into self.weights)
        for index, ((_, ir), per_order) in enumerate(zip(self.irreps_out, folded, strict=True)):
            columns: list[torch.Tensor] = []
            blocks: list[torch.Tensor] = []
            weight_ids: list[int] = []
            for nu, coefficients in enumerate(per_order):
                num_paths = coefficients.shape[-1]
                if num_paths == 0:
                    continue
                rows = torch.nonzero(_nonzero_rows(coefficients)).flatten()
                columns.append(chain.columns[nu][rows])
                blocks.append(coefficients[:, rows])
                weight_ids.append(len(self.weights))
                self.weights.append(nn.Parameter(torch.randn(self.num_elements, num_paths, self.channels) / num_paths))
            # block diagonal over the orders: [2L+1, monomials used, paths]
            self.register_buffer(f"columns_{index}", torch.cat(columns) if columns else torch.zeros(0, dtype=torch.long), persistent=False)
            self.register_buffer(f"coefficients_{index}", _block_diagonal(ir.dim, blocks).to(dtype), persistent=False)
            self._outputs.append((ir.dim, weight_ids))

    def _monomials(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows [D, N, c]`` -> the kept monomials of every order, ``[P, N, c]``.

        The monomial index comes first so that every gather takes whole contiguous ``[N, c]``
        rows: ``index_select`` along the last dimension of ``[c, N, D]`` (the layout before) took
        250 µs a call against 20 µs for these row gathers at 72 atoms and 32 channels."""
        terms = [rows]
        previous = rows
        for nu in range(2, self.correlation + 1):
            parent = getattr(self, f"parent_{nu}")
            last = getattr(self, f"last_{nu}")
            previous = previous.index_select(0, parent) * rows.index_select(0, last)
            terms.append(previous)
        return torch.cat(terms, dim=0)

    def forward(self, x: torch.Tensor, elements: AtomElements | None) -> torch.Tensor:
        """``x``: ``[N, D_in, c]``; ``elements``: which element each atom is (``None`` with one
        element) -> ``[N, D_out, c]``."""
        n = x.shape[0]
        monomials = self._monomials(x.permute(1, 0, 2).contiguous())
        outs = []
        for index, (dim, weight_ids) in enumerate(self._outputs):
            if not weight_ids:
                outs.append(x.new_zeros(n, dim, self.channels))
                continue
            chosen = monomials.index_select(0, getattr(self, f"columns_{index}"))  # [P_L, N, c]
            weights = torch.cat([self.weights[k] for k in weight_ids], dim=1)  # [E, K_L, c]
            per_element = torch.einsum("mpk,ekc->epmc", getattr(self, f"coefficients_{index}"), weights)  # [E, P_L, 2L+1, c]
            if elements is None:
                outs.append(_contract(chosen, per_element[0]))
            elif elements.groups is None:
                # each atom's own weights: a multiply and a sum over the monomials, which the
                # compiler fuses into one reduction without the [N, P, 2L+1, c] product
                own = per_element.index_select(0, elements.species)  # [N, P_L, 2L+1, c]
                outs.append((chosen.permute(1, 0, 2).unsqueeze(2) * own).sum(1))
            else:
                out = x.new_zeros(n, dim, self.channels)
                for element, atoms in enumerate(elements.groups):
                    if len(atoms):
                        out[atoms] = _contract(chosen.index_select(1, atoms), per_element[element])
                outs.append(out)
        return torch.cat(outs, dim=1)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for weight in self.weights:
                weight.normal_().div_(weight.shape[1])

    @property
    def num_weights(self) -> int:
        return sum(w.numel() for w in self.weights)

    def extra_repr(self) -> str:
        paths = ", ".join(f"{ir}:{k}" for (_, ir), k in zip(self.irreps_out, self.num_paths, strict=True))
        return f"{self.irreps_in} -> {self.irreps_out} | correlation={self.correlation}, paths {paths} | {self.num_weights} weights"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class ProductBasisBlock(nn.Module):
    """Symmetric contraction, a linear mix of channels, and the residual skip (when given).

    Shapes: ``A [N, D_in, c]``, ``skip [N, D_out, c]`` or ``None`` -> ``[N, D_out, c]``.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, correlation: int, num_elements: int, use_skip: bool) -> None:
        super().__init__()
        self.contraction = SymmetricContraction(irreps_in, irreps_out, correlation, num_elements)
        self.linear = IrrepsLinear(o3.Irreps(irreps_out), o3.Irreps(irreps_out))
        self.use_skip = use_skip

    def forward(self, basis: torch.Tensor, skip: torch.Tensor | None, elements: AtomElements | None) -> torch.Tensor:
        out = self.linear(self.contraction(basis, elements))
        if self.use_skip and skip is not None:
            out = out + skip
        return out

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"skip={self.use_skip} | {weights} weights"
