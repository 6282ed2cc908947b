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

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from e3nn import o3
from torch import nn

from ...nn.capture import is_capturing
from ...nn.equivariant import uniform_channels

__all__ = ["EdgeTensorProduct", "Edges"]

# Edges per chunk: large enough that Python overhead is small, small enough that the per-chunk
# products (chunk x 21 x channels) stay in cache-friendly sizes.
_EDGE_CHUNK = 4096


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
class _Block:
    """The paths from one irrep of the node features, stored next to each other."""

    in_start: int  # first row of H
    d_in: int
    row_start: int  # first row of A (rows grouped by input block)
    num_rows: int
    path_start: int  # first path (column block of R)
    num_paths: int
    path_of_row: torch.Tensor  # [num_rows] path of each row, counted from path_start
    coupling: torch.Tensor  # [D_sh, num_rows * d_in]: sh @ this gives the [rows, d_in] matrices


@dataclass(frozen=True)
class _Plan:
    channels: int
    in_dim: int
    sh_dim: int
    out_dim: int
    num_paths: int
    blocks: list[_Block]


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` for ``[N, ...]`` (gathering whole rows of a 2-D view is faster)."""
    return x.reshape(x.shape[0], -1).index_select(0, index).view(-1, *x.shape[1:])


def _radial(plan: _Plan, edges: Edges, radial: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``[chunk, num_paths, c]`` weights of a chunk's edges."""
    rows = radial[start:stop] if edges.bond_of_edge is None else radial.index_select(0, edges.bond_of_edge[start:stop])
    return rows.view(stop - start, plan.num_paths, plan.channels)


def _coupling(block: _Block, sh: torch.Tensor) -> torch.Tensor:
    return (sh @ block.coupling).view(sh.shape[0], block.num_rows, block.d_in)


def _row_weights(block: _Block, weights: torch.Tensor) -> torch.Tensor:
    """``[chunk, rows, c]``: each row's path weight."""
    return weights[:, block.path_start : block.path_start + block.num_paths].index_select(1, block.path_of_row)


def _bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Batched ``[B, p, q] @ [B, q, r]``; broadcast products where a dimension is 1 or ``q`` is
    small (``bmm`` is slow on many tiny matrices)."""
    if a.shape[2] <= 3:
        out = torch.mul(a[:, :, :1], b[:, :1], out=out)
        for k in range(1, a.shape[2]):
            out.addcmul_(a[:, :, k : k + 1], b[:, k : k + 1])
        return out
    if a.shape[1] == 1:
        return torch.sum(a.transpose(1, 2) * b, dim=1, keepdim=True, out=out)
    return torch.bmm(a, b, out=out)


# the four slots of Q, in the order _Convolution takes them
_SH, _RADIAL, _NODE, _GRAD = range(4)


def _present(slot: torch.Tensor | None) -> torch.Tensor:
    assert slot is not None, "a derivative read the slot it is taken for"
    return slot


@dataclass(frozen=True)
class _Pass:
    """What one pass over the edges computes (``wanted`` slots) and therefore reads: each
    derivative reads the three other slots, and two products serve several derivatives."""

    wanted: tuple[int, ...]
    reads_sh: bool
    reads_radial: bool
    reads_node: bool
    reads_grad: bool
    uses_coupled: bool  # coupling @ sender features: for A and the radial derivative
    uses_weighted: bool  # incoming gradient x path weights: for the node and harmonics derivatives

    @classmethod
    def of(cls, wanted: list[int]) -> _Pass:
        def reads(slot: int) -> bool:
            return any(k != slot for k in wanted)

        return cls(
            tuple(wanted), reads(_SH), reads(_RADIAL), reads(_NODE), reads(_GRAD),
            uses_coupled=_GRAD in wanted or _RADIAL in wanted,
            uses_weighted=_NODE in wanted or _SH in wanted,
        )


@dataclass(frozen=True)
class _Chunk:
    """One chunk of edges: the rows it gathers and the per-edge accumulators it fills."""

    start: int
    stop: int
    sh: torch.Tensor | None  # [n, D_sh] harmonics of the chunk's edges
    weights: torch.Tensor | None  # [n, num_paths, c] radial weights
    senders: torch.Tensor | None  # [n, D_in, c] sender features
    received: torch.Tensor | None  # [n, K, c] incoming gradient at the receivers
    messages: torch.Tensor | None  # [n, K, c] -> A
    back: torch.Tensor | None  # [n, D_in, c] -> node derivative
    per_path: torch.Tensor | None  # [n, num_paths, c] -> radial derivative

    @property
    def size(self) -> int:
        return self.stop - self.start


def _new_partials(plan: _Plan, edges: Edges, like: torch.Tensor, wanted: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """Zero outputs of the ``wanted`` derivatives."""
    out: dict[int, torch.Tensor] = {}
    if _GRAD in wanted:
        out[_GRAD] = like.new_zeros(edges.num_nodes, plan.out_dim, plan.channels)
    if _NODE in wanted:
        out[_NODE] = like.new_zeros(edges.num_nodes, plan.in_dim, plan.channels)
    if _RADIAL in wanted:
        out[_RADIAL] = like.new_zeros(edges.num_bonds, plan.num_paths * plan.channels)
    if _SH in wanted:
        out[_SH] = like.new_zeros(edges.num_edges, plan.sh_dim)
    return out


def _read_chunk(plan: _Plan, edges: Edges, slots: list[torch.Tensor | None], how: _Pass, like: torch.Tensor, start: int, stop: int) -> _Chunk:
    """Gather the rows of the chunk ``start:stop`` that the pass reads; allocate what it fills."""
    sh, radial, node, grad = slots
    n = stop - start
    wanted = how.wanted
    return _Chunk(
        start,
        stop,
        sh=_present(sh)[start:stop] if how.reads_sh else None,
        weights=_radial(plan, edges, _present(radial), start, stop) if how.reads_radial else None,
        senders=_rows(_present(node), edges.senders[start:stop]) if how.reads_node else None,
        received=_rows(_present(grad), edges.receivers[start:stop]) if how.reads_grad else None,
        messages=like.new_empty(n, plan.out_dim, plan.channels) if _GRAD in wanted else None,
        back=like.new_zeros(n, plan.in_dim, plan.channels) if _NODE in wanted else None,
        per_path=like.new_zeros(n, plan.num_paths, plan.channels) if _RADIAL in wanted else None,
    )


def _coupled_products(block: _Block, chunk: _Chunk, coupling: torch.Tensor | None, row_weights: torch.Tensor | None) -> None:
    """The block's rows of the messages (for ``A``) and its radial derivative, from the coupled
    harmonics times the sender features."""
    rows = slice(block.row_start, block.row_start + block.num_rows)
    inputs = slice(block.in_start, block.in_start + block.d_in)
    paths = slice(block.path_start, block.path_start + block.num_paths)
    messages = chunk.messages
    assert coupling is not None and chunk.senders is not None
    coupled = _bmm(coupling, chunk.senders[:, inputs], out=None if messages is None else messages[:, rows])
    if chunk.per_path is not None:
        assert chunk.received is not None
        chunk.per_path[:, paths].index_add_(1, block.path_of_row, coupled * chunk.received[:, rows])
    if messages is not None:
        assert row_weights is not None
        coupled.mul_(row_weights)  # in place: these are the message rows


def _weighted_products(
    block: _Block, chunk: _Chunk, coupling: torch.Tensor | None, row_weights: torch.Tensor | None, out_sh: torch.Tensor | None
) -> None:
    """The block's share of the node and harmonics derivatives, from the incoming gradient times
    the path weights."""
    rows = slice(block.row_start, block.row_start + block.num_rows)
    inputs = slice(block.in_start, block.in_start + block.d_in)
    assert chunk.received is not None and row_weights is not None
    weighted = chunk.received[:, rows] * row_weights
    if chunk.back is not None:
        assert coupling is not None
        chunk.back[:, inputs] += _bmm(coupling.transpose(1, 2), weighted)
    if out_sh is not None:
        assert chunk.senders is not None
        outer = torch.bmm(weighted, chunk.senders[:, inputs].transpose(1, 2))  # [n, rows, d_in], summed over channels
        out_sh[chunk.start : chunk.stop].addmm_(outer.reshape(chunk.size, -1), block.coupling.T)


def _scatter_chunk(edges: Edges, chunk: _Chunk, out: dict[int, torch.Tensor]) -> None:
    """Add the chunk's per-edge accumulators into the per-node and per-bond outputs."""
    start, stop = chunk.start, chunk.stop
    if chunk.messages is not None:
        out[_GRAD].index_add_(0, edges.receivers[start:stop], chunk.messages)
    if chunk.back is not None:
        out[_NODE].index_add_(0, edges.senders[start:stop], chunk.back)
    if chunk.per_path is not None:
        per_bond = chunk.per_path.view(chunk.size, -1)
        if edges.bond_of_edge is None:
            out[_RADIAL][start:stop] = per_bond
        else:
            out[_RADIAL].index_add_(0, edges.bond_of_edge[start:stop], per_bond)


def _partials(plan: _Plan, edges: Edges, slots: list[torch.Tensor | None], wanted: list[int]) -> dict[int, torch.Tensor]:
    """The partial derivatives of ``Q`` for the ``wanted`` slots, from the other slots, in one
    pass over the edges: the gathered rows and the products that several derivatives share
    (coupled harmonics and sender features, weighted incoming gradients) are made once a chunk.

    Slot by slot: ``_GRAD`` gives ``A [N, K, c]`` (the neighbour sums), ``_NODE`` ``[N, D_in, c]``,
    ``_RADIAL`` ``[bonds, num_paths * c]``, ``_SH`` ``[E, D_sh]``."""
    like = next(t for t in slots if t is not None)  # for dtype and device
    how = _Pass.of(wanted)
    out = _new_partials(plan, edges, like, how.wanted)
    for start, stop in edges.chunks():
        chunk = _read_chunk(plan, edges, slots, how, like, start, stop)
        for block in plan.blocks:
            coupling = _coupling(block, chunk.sh) if chunk.sh is not None else None
            row_weights = _row_weights(block, chunk.weights) if chunk.weights is not None else None
            if how.uses_coupled:
                _coupled_products(block, chunk, coupling, row_weights)
            if how.uses_weighted:
                _weighted_products(block, chunk, coupling, row_weights, out.get(_SH))
        _scatter_chunk(edges, chunk, out)
    return out


def _traced_neighbour_sum(plan: _Plan, edges: Edges, sh: torch.Tensor, radial: torch.Tensor, node: torch.Tensor) -> torch.Tensor:
    """``A [N, K, c]`` with ordinary autograd operations, all edges at once: what
    ``torch.jit.trace`` records (it cannot record :class:`_Convolution`, a Python autograd
    function with non-tensor arguments, nor a chunk loop whose length depends on the edge
    count). The same products as :func:`_partials` with ``wanted=[_GRAD]``, so the same values."""
    senders = _rows(node, edges.senders)
    rows = radial if edges.bond_of_edge is None else radial.index_select(0, edges.bond_of_edge)
    weights = rows.view(rows.shape[0], plan.num_paths, plan.channels)
    messages = []
    for block in plan.blocks:  # row blocks in order: block.row_start is the running row count
        coupled = _bmm(_coupling(block, sh), senders[:, block.in_start : block.in_start + block.d_in])
        messages.append(coupled * _row_weights(block, weights))
    summed = node.new_zeros(node.shape[0], plan.out_dim, plan.channels)
    return summed.index_add(0, edges.receivers, torch.cat(messages, dim=1))


class _Convolution(torch.autograd.Function):
    """The missing one of ``(sh, radial, node, grad)`` as the partial derivative of ``Q``.

    Its backward evaluates only the derivatives the running pass uses: when the loss is
    differentiated for the parameters, those for the harmonics (which lead to the positions
    alone) are skipped, and so is the first layer's node derivative when forces are computed.
    A backward that builds no graph (the last one) gets all its derivatives from one pass."""

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
        slots = [sh, radial, node, grad]
        missing = [k for k, t in enumerate(slots) if t is None]
        if len(missing) != 1:
            raise ValueError("exactly one of sh, radial, node, grad must be None")
        ctx.plan, ctx.edges, ctx.missing = plan, edges, missing[0]
        ctx.save_for_backward(*slots)
        return _partials(plan, edges, slots, missing)[missing[0]]

    @staticmethod
    def backward(ctx, out_grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        slots = list(ctx.saved_tensors)
        slots[ctx.missing] = out_grad
        # the autograd node's edges lead to the tensor inputs only, in order
        given = [k for k in range(4) if k != ctx.missing]
        wanted = [k for edge, k in enumerate(given) if _wanted(ctx, 2 + k, edge)]
        grads: list[torch.Tensor | None] = [None] * 4
        if torch.is_grad_enabled():  # building a graph: each derivative is a node that differentiates again
            for k in wanted:
                args = list(slots)
                args[k] = None
                grads[k] = _Convolution.apply(ctx.plan, ctx.edges, *args)
        else:
            for k, value in _partials(ctx.plan, ctx.edges, slots, wanted).items():
                grads[k] = value
        return (None, None, *grads)


def _wanted(ctx: Any, index: int, edge: int) -> bool:
    """Whether the running backward pass uses the gradient of argument ``index`` (the
    ``edge``-th tensor argument)."""
    if not ctx.needs_input_grad[index]:
        return False
    node = ctx.next_functions[edge][0]
    if node is None:
        return True
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except RuntimeError:  # a leaf under autograd.grad: the engine cannot say, so compute it
        return True


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
        self.channels = uniform_channels(self.irreps_in, "the node irreps")
        targets = {ir for _, ir in o3.Irreps(irreps_target)}
        sh_starts = [s.start for s in self.irreps_sh.slices()]
        dtype = torch.get_default_dtype()
        # paths in the order (input irrep, harmonic, output irrep): the radial MLP's columns
        self.paths: list[tuple[int, int, o3.Irrep]] = []  # (input irrep, harmonic, output irrep)
        self.path_irreps: list[o3.Irrep] = []
        self._layout: list[tuple[int, int, int, int, int, int]] = []
        row = in_start = 0
        for block_index, (_, ir_in) in enumerate(self.irreps_in):
            first_row, first_path = row, len(self.path_irreps)
            path_of_row: list[int] = []
            coupling = torch.zeros(self.irreps_sh.dim, 0, ir_in.dim, dtype=torch.float64)
            for sh_index, ((_, ir_sh), sh_start) in enumerate(zip(self.irreps_sh, sh_starts, strict=True)):
                for ir_out in ir_in * ir_sh:
                    if ir_out not in targets:
                        continue
                    w3j = o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l, dtype=torch.float64) * math.sqrt(ir_out.dim)
                    block = torch.zeros(self.irreps_sh.dim, ir_out.dim, ir_in.dim, dtype=torch.float64)
                    block[sh_start : sh_start + ir_sh.dim] = w3j.permute(1, 2, 0)  # [sh, out, in]
                    coupling = torch.cat([coupling, block], dim=1)
                    path_of_row += [len(self.path_irreps) - first_path] * ir_out.dim
                    self.path_irreps.append(ir_out)
                    self.paths.append((block_index, sh_index, ir_out))
                    row += ir_out.dim
            self.register_buffer(
                f"coupling_{block_index}", coupling.reshape(self.irreps_sh.dim, -1).to(dtype), persistent=False
            )
            self.register_buffer(f"path_of_row_{block_index}", torch.tensor(path_of_row, dtype=torch.long), persistent=False)
            self._layout.append((in_start, ir_in.dim, first_row, row - first_row, first_path, len(self.path_irreps) - first_path))
            in_start += ir_in.dim
        self.num_paths = len(self.path_irreps)
        self._out_dim = row
        # the rows come grouped by input irrep; the output lists them grouped by output irrep
        row_irreps = [ir for ir in self.path_irreps for _ in range(ir.dim)]
        starts = list(itertools.accumulate([ir.dim for ir in self.path_irreps], initial=0))
        by_irrep = sorted(range(self.num_paths), key=lambda k: self.path_irreps[k])
        order = [starts[k] + m for k in by_irrep for m in range(self.path_irreps[k].dim)]
        self.register_buffer("to_output_order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.irreps_out = o3.Irreps([(self.channels, self.path_irreps[k]) for k in by_irrep])
        assert len(row_irreps) == self._out_dim
        self._in_dim = self.irreps_in.dim // self.channels

    @property
    def weight_numel(self) -> int:
        """Weights each edge needs (from the radial MLP): one per path and channel, the paths in
        the order of :attr:`path_irreps`."""
        return self.num_paths * self.channels

    def _plan(self) -> _Plan:
        blocks = [
            _Block(in_start, d_in, row_start, rows, path_start, paths,
                   getattr(self, f"path_of_row_{k}"), getattr(self, f"coupling_{k}"))
            for k, (in_start, d_in, row_start, rows, path_start, paths) in enumerate(self._layout)
        ]
        return _Plan(self.channels, self._in_dim, self.irreps_sh.dim, self._out_dim, self.num_paths, blocks)

    def forward(self, node: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor, edges: Edges) -> torch.Tensor:
        if is_capturing():
            summed = _traced_neighbour_sum(self._plan(), edges, sh, radial, node.contiguous())
        else:
            summed = _Convolution.apply(self._plan(), edges, sh, radial, node.contiguous(), None)
        order: torch.Tensor = self.to_output_order  # type: ignore[assignment]
        return summed.index_select(1, order)

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} ⊗ {self.irreps_sh} -> {self.irreps_out} | "
            f"{self.num_paths} paths, {self.weight_numel} weights per edge"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
