"""MACE's neighbour sum of channel-wise tensor products, as one fused, recomputing operation.

The atomic basis before its channel mixing is

    A[i, k, c] = sum_{e: i -> j} sum_{m, s} T_k[m, s] Y[e, s] R[bond(e), p(k), c] H[j, m, c]

for every tensor-product path ``p`` (``l_in ⊗ l_sh -> l_out``) and row ``k`` of its output, with
``T`` the Wigner coefficients. Written with autograd, each step keeps per-edge tensors of the
output's size (``E x 21 x c`` for ``0e + 1o`` features and ``l <= 2`` harmonics) alive for the
backward pass, and force training differentiates twice, so they appear again in the force
graph: they dominate the memory of a training step.

Here ``A`` is one of the four partial derivatives of the quadrilinear form
``Q(Y, R, H, G) = sum_{i, k, c} G[i, k, c] A[i, k, c]``; the derivatives with respect to ``Y``,
``R`` and ``H`` are the other three, and the derivative of any of them is again one of the four
(with the differentiated slot filled by the incoming gradient). :class:`_Convolution` computes
whichever slot is missing from the other three, looping over chunks of edges, and saves only
its inputs (edge harmonics, bond weights, node features), so no per-edge product outlives its
chunk at any order of differentiation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from e3nn import o3
from torch import nn

from .linear import channels_of

__all__ = ["EdgeTensorProduct", "Edges"]

# Edges per chunk: large enough that Python overhead is small, small enough that the per-chunk
# products (chunk x 21 x channels) stay in cache-friendly sizes.
_EDGE_CHUNK = 2048


@dataclass(frozen=True)
class Edges:
    """Who sends to whom: ``receivers``/``senders`` ``[E]`` (the message ``j -> i`` goes to
    ``i``), ``bond_of_edge`` ``[E]`` (row of the per-bond radial weights; ``None``: one row per
    edge), and the node and bond counts."""

    receivers: torch.Tensor
    senders: torch.Tensor
    bond_of_edge: torch.Tensor | None
    num_nodes: int
    num_bonds: int

    @property
    def num_edges(self) -> int:
        return int(self.receivers.shape[0])

    def chunks(self) -> Iterator[tuple[int, int]]:
        for start in range(0, self.num_edges, _EDGE_CHUNK):
            yield start, min(self.num_edges, start + _EDGE_CHUNK)


@dataclass(frozen=True)
class _Path:
    in_block: int  # block of H (an irrep of the node features)
    d_in: int
    sh_block: int  # block of Y
    d_out: int
    out_start: int  # first row of A
    coupling: torch.Tensor  # [d_sh, d_out * d_in]


@dataclass(frozen=True)
class _Plan:
    channels: int
    in_dims: list[int]
    sh_dims: list[int]
    out_dim: int
    paths: list[_Path]


def _couplings(plan: _Plan, sh: torch.Tensor) -> list[torch.Tensor]:
    """Per path, the ``[E, d_out, d_in]`` coupling matrices of a chunk's harmonics."""
    blocks = sh.split(plan.sh_dims, dim=1)
    n = sh.shape[0]
    return [(blocks[p.sh_block] @ p.coupling).view(n, p.d_out, p.d_in) for p in plan.paths]


def _radial(plan: _Plan, edges: Edges, radial: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``[chunk, num_paths, c]`` weights of a chunk's edges."""
    rows = radial[start:stop] if edges.bond_of_edge is None else radial.index_select(0, edges.bond_of_edge[start:stop])
    return rows.view(stop - start, len(plan.paths), plan.channels)


def _rows(node: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``node[index]`` for ``[N, D, c]`` (gathering whole rows of a 2-D view is faster)."""
    return node.reshape(node.shape[0], -1).index_select(0, index).view(-1, *node.shape[1:])


def _sender_blocks(plan: _Plan, node: torch.Tensor, edges: Edges, start: int, stop: int) -> list[torch.Tensor]:
    senders = edges.senders[start:stop]
    return [_rows(block.contiguous(), senders) for block in node.split(plan.in_dims, dim=1)]


def _matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Batched ``[B, p, q] @ [B, q, r]`` for a small ``q``, as ``q`` broadcast products
    (much faster than ``bmm`` on many tiny matrices); written into ``out`` when given."""
    out = torch.mul(a[:, :, :1], b[:, :1], out=out)
    for k in range(1, a.shape[2]):
        out.addcmul_(a[:, :, k : k + 1], b[:, k : k + 1])
    return out


def _atomic_basis(plan: _Plan, edges: Edges, sh: torch.Tensor, radial: torch.Tensor, node: torch.Tensor) -> torch.Tensor:
    """``A [N, K, c]``: the neighbour sums."""
    out = node.new_zeros(edges.num_nodes, plan.out_dim, plan.channels)
    for start, stop in edges.chunks():
        couplings = _couplings(plan, sh[start:stop])
        weights = _radial(plan, edges, radial, start, stop)
        senders = _sender_blocks(plan, node, edges, start, stop)
        messages = node.new_empty(stop - start, plan.out_dim, plan.channels)
        for k, (path, coupling) in enumerate(zip(plan.paths, couplings, strict=True)):
            weighted = senders[path.in_block] * weights[:, k].unsqueeze(1)
            _matmul(coupling, weighted, out=messages[:, path.out_start : path.out_start + path.d_out])
        out.index_add_(0, edges.receivers[start:stop], messages)
    return out


def _node_gradient(plan: _Plan, edges: Edges, sh: torch.Tensor, radial: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``dQ/dH [N, D_in, c]``."""
    out = grad.new_zeros(edges.num_nodes, sum(plan.in_dims), plan.channels)
    offsets = [sum(plan.in_dims[:b]) for b in range(len(plan.in_dims))]
    for start, stop in edges.chunks():
        couplings = _couplings(plan, sh[start:stop])
        weights = _radial(plan, edges, radial, start, stop)
        received = _rows(grad, edges.receivers[start:stop])
        back = grad.new_zeros(stop - start, sum(plan.in_dims), plan.channels)
        for k, (path, coupling) in enumerate(zip(plan.paths, couplings, strict=True)):
            g = received[:, path.out_start : path.out_start + path.d_out]
            rows = back[:, offsets[path.in_block] : offsets[path.in_block] + path.d_in]
            rows.addcmul_(_matmul(coupling.transpose(1, 2), g), weights[:, k].unsqueeze(1))
        out.index_add_(0, edges.senders[start:stop], back)
    return out


def _radial_gradient(plan: _Plan, edges: Edges, sh: torch.Tensor, node: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``dQ/dR [bonds, num_paths * c]``."""
    out = grad.new_zeros(edges.num_bonds, len(plan.paths) * plan.channels)
    for start, stop in edges.chunks():
        couplings = _couplings(plan, sh[start:stop])
        senders = _sender_blocks(plan, node, edges, start, stop)
        received = _rows(grad, edges.receivers[start:stop])
        chunk = grad.new_empty(stop - start, len(plan.paths), plan.channels)
        for k, (path, coupling) in enumerate(zip(plan.paths, couplings, strict=True)):
            coupled = _matmul(coupling, senders[path.in_block])
            coupled.mul_(received[:, path.out_start : path.out_start + path.d_out])
            torch.sum(coupled, dim=1, out=chunk[:, k])
        chunk = chunk.view(stop - start, -1)
        if edges.bond_of_edge is None:
            out[start:stop] = chunk
        else:
            out.index_add_(0, edges.bond_of_edge[start:stop], chunk)
    return out


def _sh_gradient(plan: _Plan, edges: Edges, radial: torch.Tensor, node: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``dQ/dY [E, D_sh]``."""
    out = grad.new_zeros(edges.num_edges, sum(plan.sh_dims))
    offsets = [sum(plan.sh_dims[:b]) for b in range(len(plan.sh_dims))]
    for start, stop in edges.chunks():
        weights = _radial(plan, edges, radial, start, stop)
        senders = _sender_blocks(plan, node, edges, start, stop)
        received = _rows(grad, edges.receivers[start:stop])
        block_out = out[start:stop]
        for k, path in enumerate(plan.paths):
            g = received[:, path.out_start : path.out_start + path.d_out] * weights[:, k].unsqueeze(1)
            outer = torch.bmm(g, senders[path.in_block].transpose(1, 2))  # [chunk, d_out, d_in]
            target = block_out[:, offsets[path.sh_block] : offsets[path.sh_block] + path.coupling.shape[0]]
            target.addmm_(outer.reshape(stop - start, -1), path.coupling.T)
    return out


class _Convolution(torch.autograd.Function):
    """The missing one of ``(sh, radial, node, grad)`` as the partial derivative of ``Q``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        plan: _Plan,
        edges: Edges,
        sh: torch.Tensor | None,
        radial: torch.Tensor | None,
        node: torch.Tensor | None,
        grad: torch.Tensor | None,
    ) -> torch.Tensor:
        slots = (sh, radial, node, grad)
        missing = [k for k, t in enumerate(slots) if t is None]
        if len(missing) != 1:
            raise ValueError("exactly one of sh, radial, node, grad must be None")
        ctx.plan, ctx.edges, ctx.missing = plan, edges, missing[0]
        ctx.save_for_backward(*slots)
        return _evaluate(plan, edges, slots, missing[0])

    @staticmethod
    def backward(ctx, out_grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        slots = list(ctx.saved_tensors)
        slots[ctx.missing] = out_grad
        grads: list[torch.Tensor | None] = [None] * 4
        for k in range(4):
            if k != ctx.missing and ctx.needs_input_grad[2 + k]:
                args = list(slots)
                args[k] = None
                grads[k] = _Convolution.apply(ctx.plan, ctx.edges, *args)
        return (None, None, *grads)


def _evaluate(plan: _Plan, edges: Edges, slots: tuple[torch.Tensor | None, ...], missing: int) -> torch.Tensor:
    sh, radial, node, grad = slots
    if missing == 3:
        assert sh is not None and radial is not None and node is not None
        return _atomic_basis(plan, edges, sh, radial, node)
    assert grad is not None
    if missing == 2:
        assert sh is not None and radial is not None
        return _node_gradient(plan, edges, sh, radial, grad)
    if missing == 1:
        assert sh is not None and node is not None
        return _radial_gradient(plan, edges, sh, node, grad)
    assert radial is not None and node is not None
    return _sh_gradient(plan, edges, radial, node, grad)


class EdgeTensorProduct(nn.Module):
    """Neighbour sum of channel-wise tensor products of sender features with edge harmonics.

    For every path ``l_in ⊗ l_sh -> l_out`` (``l_out`` among the target irreps) and channel,
    the message is ``w[bond, path, c] * sqrt(2 l_out + 1) * C(l_in, l_sh, l_out) h_j ⊗ Y(r_ij)``
    (e3nn's ``"uvu"`` tensor product with weights per edge), summed over the neighbours ``j``
    of each atom. Computed by the fused operation of this module's docstring.

    Shapes: ``node [N, D_in, c]``, ``sh [E, D_sh]``, ``radial [bonds, num_paths * c]`` ->
    ``[N, D_out, c]`` with irreps :attr:`irreps_out` (one block per path, grouped by irrep).

    Examples
    --------
    >>> EdgeTensorProduct(o3.Irreps("8x0e + 8x1o"), o3.Irreps("0e + 1o + 2e"), o3.Irreps("8x0e + 8x1o + 8x2e"))
    EdgeTensorProduct(8x0e+8x1o ⊗ 1x0e+1x1o+1x2e -> 8x0e+8x0e+8x1o+8x1o+8x1o+8x2e+8x2e | 7 paths, 56 weights per edge)
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.channels = channels_of(self.irreps_in, "the node irreps")
        targets = {ir for _, ir in o3.Irreps(irreps_target)}
        paths = []  # (l_out irrep, input block, input irrep, sh block, sh irrep)
        for in_block, (_, ir_in) in enumerate(self.irreps_in):
            for sh_block, (_, ir_sh) in enumerate(self.irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in targets:
                        paths.append((ir_out, in_block, ir_in, sh_block, ir_sh))
        paths.sort(key=lambda path: path[0])  # stable: blocks of one irrep become adjacent
        self.num_paths = len(paths)
        self.irreps_out = o3.Irreps([(self.channels, path[0]) for path in paths])
        dtype = torch.get_default_dtype()
        self._layout: list[tuple[int, int, int, int, int]] = []
        row = 0
        for k, (ir_out, in_block, ir_in, sh_block, ir_sh) in enumerate(paths):
            w3j = o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l, dtype=torch.float64) * math.sqrt(ir_out.dim)
            # [sh, out * in]: sh_block @ this is the path's [out, in] coupling matrix per edge
            folded = w3j.permute(1, 2, 0).reshape(ir_sh.dim, ir_out.dim * ir_in.dim)
            self.register_buffer(f"coupling_{k}", folded.to(dtype).contiguous(), persistent=False)
            self._layout.append((in_block, ir_in.dim, sh_block, ir_out.dim, row))
            row += ir_out.dim
        self._in_dims = [ir.dim for _, ir in self.irreps_in]
        self._sh_dims = [ir.dim for _, ir in self.irreps_sh]
        self._out_dim = row

    @property
    def weight_numel(self) -> int:
        """Weights each edge needs (from the radial MLP)."""
        return self.num_paths * self.channels

    def _plan(self) -> _Plan:
        paths = [
            _Path(in_block, d_in, sh_block, d_out, start, getattr(self, f"coupling_{k}"))
            for k, (in_block, d_in, sh_block, d_out, start) in enumerate(self._layout)
        ]
        return _Plan(self.channels, self._in_dims, self._sh_dims, self._out_dim, paths)

    def forward(self, node: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor, edges: Edges) -> torch.Tensor:
        return _Convolution.apply(self._plan(), edges, sh, radial, node.contiguous(), None)

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} ⊗ {self.irreps_sh} -> {self.irreps_out} | "
            f"{self.num_paths} paths, {self.weight_numel} weights per edge"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
