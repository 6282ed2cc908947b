"""MACE's product basis: higher body-order features from powers of the atomic basis.

For each output irrep ``L`` and channel ``c``, with ``A = A_i[:, c]`` (irreps ``0e+1o+2e+...``)::

    B[M, c] = sum_{nu=1..correlation} sum_k w_nu[element, k, c] sum_{i1..inu} U_nu[M, i1..inu, k] A_i1 ... A_inu

``U_nu`` are the generalised Clebsch-Gordan coefficients of :mod:`.coupling`. Products of
``nu`` copies of ``A`` carry body order ``nu + 1``; a layer with correlation 3 sees four-body
terms at once. Here the sum over ``i1..inu`` runs over monomials (``i1 <= ... <= inu``), built
one order from the previous, and only the monomials with a non-zero coefficient are kept.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .coupling import coupling_basis, monomial_parents, symmetrise
from .linear import IrrepsLinear, channels_of

__all__ = ["ProductBasisBlock", "SymmetricContraction"]

_ZERO = 1e-10


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
        self.channels = channels_of(self.irreps_in, "the atomic-basis irreps")
        if channels_of(self.irreps_out, "the product irreps") != self.channels:
            raise ValueError(f"the product keeps the channels: {self.irreps_in} -> {self.irreps_out}")
        coupling = o3.Irreps([(1, ir) for _, ir in self.irreps_in])
        dim = coupling.dim
        self._dim = dim

        # folded coefficients per output irrep and order: S[L][nu] of shape [2L+1, P_nu, K]
        folded = [
            [symmetrise(coupling_basis(coupling, nu, ir)) for nu in range(1, self.correlation + 1)]
            for _, ir in self.irreps_out
        ]
        self.num_paths = [[s.shape[-1] for s in per_order] for per_order in folded]

        # which monomials are needed: used by some output, or a factor of a needed one
        used = [torch.zeros(s.shape[1], dtype=torch.bool) for s in folded[0]] if folded else []
        for per_order in folded:
            for nu, s in enumerate(per_order):
                used[nu] |= s.abs().amax(dim=(0, 2)) > _ZERO
        needed = [u.clone() for u in used]
        parents = [None] + [monomial_parents(dim, nu) for nu in range(2, self.correlation + 1)]
        for nu in range(self.correlation - 1, 0, -1):
            parent, _ = parents[nu]
            needed[nu - 1][parent[needed[nu]]] = True
        needed[0][:] = True  # order 1 is the input itself
        kept = [torch.nonzero(n).flatten() for n in needed]
        position = []  # monomial index -> column in the concatenated monomial vector
        offset = 0
        for nu, k in enumerate(kept):
            pos = torch.full((needed[nu].numel(),), -1, dtype=torch.long)
            pos[k] = torch.arange(offset, offset + len(k))
            position.append(pos)
            offset += len(k)
        # building order nu (>= 2) from order nu - 1: positions inside their own order's block
        for nu in range(1, self.correlation):
            parent, last = parents[nu]
            local_parent = position[nu - 1][parent[kept[nu]]] - (position[nu - 1][kept[nu - 1][0]] if nu > 1 else 0)
            self.register_buffer(f"parent_{nu + 1}", local_parent, persistent=False)
            self.register_buffer(f"last_{nu + 1}", last[kept[nu]].clone(), persistent=False)

        dtype = torch.get_default_dtype()
        self.weights = nn.ParameterList()
        self._outputs: list[tuple[int, list[int]]] = []  # (irrep dim, indices into self.weights)
        for index, ((_, ir), per_order) in enumerate(zip(self.irreps_out, folded, strict=True)):
            columns, blocks, weight_ids = [], [], []
            for nu, s in enumerate(per_order):
                k = s.shape[-1]
                if k == 0:
                    continue
                nonzero = torch.nonzero(s.abs().amax(dim=(0, 2)) > _ZERO).flatten()
                columns.append(position[nu][nonzero])
                blocks.append((s[:, nonzero], k))
                weight_ids.append(len(self.weights))
                self.weights.append(nn.Parameter(torch.randn(self.num_elements, k, self.channels) / k))
            # block-diagonal coefficients over orders: [2L+1, P_L, K_L]
            num_cols = sum(len(c) for c in columns)
            num_k = sum(k for _, k in blocks)
            matrix = torch.zeros(ir.dim, num_cols, num_k, dtype=torch.float64)
            row = col = 0
            for (s, k), cols in zip(blocks, columns, strict=True):
                matrix[:, row : row + len(cols), col : col + k] = s
                row += len(cols)
                col += k
            self.register_buffer(f"columns_{index}", torch.cat(columns) if columns else torch.zeros(0, dtype=torch.long), persistent=False)
            self.register_buffer(f"coefficients_{index}", matrix.to(dtype), persistent=False)
            self._outputs.append((ir.dim, weight_ids))

    def _monomials(self, x: torch.Tensor) -> torch.Tensor:
        """``x [c, N, D]`` -> the kept monomials of every order, ``[c, N, P]``."""
        terms = [x]
        previous = x
        for nu in range(2, self.correlation + 1):
            parent = getattr(self, f"parent_{nu}")
            last = getattr(self, f"last_{nu}")
            previous = previous.index_select(2, parent) * x.index_select(2, last)
            terms.append(previous)
        return torch.cat(terms, dim=2)

    def forward(self, x: torch.Tensor, element_groups: list[torch.Tensor] | None) -> torch.Tensor:
        """``x``: ``[N, D_in, c]``; ``element_groups``: atom indices of each element (``None``
        with one element) -> ``[N, D_out, c]``."""
        n = x.shape[0]
        monomials = self._monomials(x.permute(2, 0, 1))  # channels first: one matrix per channel
        outs = []
        for index, (dim, weight_ids) in enumerate(self._outputs):
            if not weight_ids:
                outs.append(x.new_zeros(self.channels, n, dim))
                continue
            chosen = monomials.index_select(2, getattr(self, f"columns_{index}"))  # [c, N, P_L]
            weights = torch.cat([self.weights[k] for k in weight_ids], dim=1)  # [E, K_L, c]
            per_element = torch.einsum("mpk,ekc->ecpm", getattr(self, f"coefficients_{index}"), weights)
            if element_groups is None:
                outs.append(torch.bmm(chosen, per_element[0]))
            else:
                out = x.new_zeros(self.channels, n, dim)
                for element, atoms in enumerate(element_groups):
                    if len(atoms):
                        out[:, atoms] = torch.bmm(chosen[:, atoms], per_element[element])
                outs.append(out)
        return torch.cat(outs, dim=2).permute(1, 2, 0)

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

    def forward(self, basis: torch.Tensor, skip: torch.Tensor | None, element_groups: list[torch.Tensor] | None) -> torch.Tensor:
        out = self.linear(self.contraction(basis, element_groups))
        if self.use_skip and skip is not None:
            out = out + skip
        return out

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"skip={self.use_skip} | {weights} weights"
