"""NequIP's layers: the radial filter, the edge convolution and the interaction block."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from ...nn.equivariant import CouplingPaths, ScalarMLP, redraw_normal, to_channels
from ...nn.mlp import activation
from ...nn.scatter import scatter_sum

__all__ = ["EdgeConvolution", "InteractionBlock", "RadialFilter"]


class RadialFilter(nn.Module):
    """Per-edge weights of a tensor product from the radial basis.

    A bias-free MLP with e3nn's variance-preserving initialisation (weights ``N(0, 1)`` divided by
    the square root of the fan-in, activation rescaled to unit second moment). Its last hidden
    layer is multiplied by the envelope (unless ``envelope_on_hidden=False``), so the weights
    vanish smoothly at the cutoff whatever the activation. The output comes in pieces of the given ``splits`` widths, each from its own
    slice of the last weight matrix, so that no per-edge tensor is sliced (slicing one costs a
    full-size zero tensor in every backward pass).
    """

    def __init__(self, num_basis: int, hidden: Sequence[int], activation_name: str, splits: Sequence[int], scale: float = 1.0,
                 envelope_on_hidden: bool = True) -> None:
        super().__init__()
        self.envelope_on_hidden = envelope_on_hidden
        self.splits = [int(n) for n in splits]
        self.hidden = ScalarMLP([num_basis, *hidden], activation_name, output_activation=True)
        width = self.hidden.sizes[-1]
        self.last = nn.Parameter(torch.randn(width, sum(self.splits)))
        self.scale = float(scale) / math.sqrt(width)

    def reset_parameters(self) -> None:
        self.hidden.reset_parameters()
        redraw_normal([self.last])

    def forward(self, radial: torch.Tensor, envelope: torch.Tensor) -> list[torch.Tensor]:
        """``radial [E, B]``, ``envelope [E]`` -> one ``[E, width]`` weight tensor per split."""
        h = self.hidden(radial)
        if self.envelope_on_hidden:
            h = h * envelope.unsqueeze(-1)
        return [h @ part for part in (self.last * self.scale).split(self.splits, dim=1)]

    def extra_repr(self) -> str:
        weights = self.last.numel() + sum(p.numel() for p in self.hidden.parameters())
        return f"{self.last.shape[0]} -> {sum(self.splits)} per-edge weights in {len(self.splits)} blocks | {weights} weights"


class EdgeConvolution(nn.Module):
    r"""Sum over neighbours of the channel-wise tensor product of their features with the edge's
    spherical harmonics, weighted per edge, channel and path by a :class:`RadialFilter`:

    .. math:: m_{i,u,p} = \frac{1}{\sqrt{\bar n}} \sum_{j} R_{p,u}(r_{ij})\,
              \big(x_{j,u} \otimes Y(\hat r_{ij})\big)_p

    (e3nn's ``"uvu"`` tensor product with one output slot per path). The irreps of ``x`` may carry
    different numbers of channels (``128x0e + 64x1e + 32x2e``, SevenNet-0); a path then has the
    channels of its input irrep.

    Why it is laid out as it is: the per-edge tensors of every path are the cost of NequIP on a
    CPU, and they are memory-bound. Paths are grouped by output dimension ``d`` and input irrep;
    for each group the Clebsch-Gordan tensor is contracted with the spherical harmonics (one
    matrix product over the edges, no zero blocks) and one batched matrix product with the
    neighbours' features gives every path of the group as ``[E, d, paths * U]``, so the radial
    weights ``[E, 1, paths * U]`` multiply it with a broadcast over ``d`` and are never expanded
    per component. A training step on batches of eight 108-atom copper cells took a quarter of the
    CPU time of e3nn's generic ``TensorProduct`` in the same model, with less peak memory
    (``benchmarks/equivariant_training.py``).
    """

    weight_paths: torch.Tensor

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        targets: Iterable[o3.Irrep],
        num_basis: int,
        radial_hidden: Sequence[int],
        radial_activation: str,
        avg_num_neighbours: float,
        envelope_on_hidden: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.muls = [mul for mul, _ in self.irreps_in]
        # one channel count for all irreps: the fast layout (paths of a group share a tensor)
        self.uniform = len(set(self.muls)) == 1
        self.channels = self.muls[0] if self.uniform else max(self.muls)
        self.paths = CouplingPaths(self.irreps_in, self.irreps_sh, targets)
        if not len(self.paths):
            raise ValueError(f"no tensor-product path from {self.irreps_in} x {self.irreps_sh} to the targets")
        used = self.paths.used_inputs1()  # input irreps that some path reads
        starts = [sum(ir.dim for _, ir in self.irreps_in[:k]) for k in range(len(self.irreps_in))]
        order = self._register_blocks(used, starts)
        self._register_output_order(order)
        self._inputs = [(starts[k], self.irreps_in[k].ir.dim) for k in used]
        # e3nn-layout slice of each used input irrep: (start, channels, 2l + 1)
        slices = self.irreps_in.slices()
        self._input_slices = [(slices[k].start, self.muls[k], self.irreps_in[k].ir.dim) for k in used]
        self.radial = RadialFilter(
            num_basis, radial_hidden, radial_activation, [count * self._block_channels[b] for b, (*_, count) in enumerate(self._blocks)],
            scale=1.0 / math.sqrt(avg_num_neighbours), envelope_on_hidden=envelope_on_hidden,
        )

    def _register_blocks(self, used: list[int], starts: list[int]) -> list[int]:
        """One block per (output dimension, input irrep): a dense ``[rows, d_in]`` matrix per
        edge, rows ordered (component, path), so the weights broadcast over the components.
        Registers each block's coupling; returns the path of each weight slot, block after block."""
        coupling = self.paths.coupling()  # [D_in, D_sh, K], K path after path
        path_columns = list(itertools.accumulate((path.ir_out.dim for path in self.paths.paths), initial=0))
        self.group_dims: list[int] = sorted({p.ir_out.dim for p in self.paths.paths})
        self._blocks: list[tuple[int, int, int, int]] = []  # group, dim, input irrep, paths
        self._block_channels: list[int] = []  # channels of each block's input irrep
        self._block_members: list[list[int]] = []  # paths of each block, in weight-slot order
        order: list[int] = []
        for g, dim in enumerate(self.group_dims):
            for k_in in used:
                members = [k for k, p in enumerate(self.paths.paths) if p.ir_out.dim == dim and p.i1 == k_in]
                if not members:
                    continue
                rows = torch.tensor([path_columns[k] + m for m in range(dim) for k in members])
                d_in = self.irreps_in[k_in].ir.dim
                block = coupling[starts[k_in] : starts[k_in] + d_in][:, :, rows]  # [d_in, D_sh, rows]
                # [D_sh, rows * d_in]: edge_sh @ this is each edge's [rows, d_in] matrix
                self.register_buffer(f"coupling_{len(self._blocks)}", block.permute(1, 2, 0).reshape(self.irreps_sh.dim, -1).contiguous(), persistent=False)
                self._blocks.append((g, dim, used.index(k_in), len(members)))
                self._block_channels.append(self.muls[k_in])
                self._block_members.append(members)
                order.extend(members)
        self.register_buffer("weight_paths", torch.tensor(order), persistent=False)
        return order

    def _register_output_order(self, order: list[int]) -> None:
        """Output in e3nn's layout, one block per output irrep with (path, channel) multiplicity:
        where each output irrep's paths sit in its group (``order``: path of each weight slot)."""
        self.irreps_out = o3.Irreps([
            (sum(self.muls[p.i1] for p in self.paths.paths if p.ir_out == ir), ir) for ir, _, _ in self.paths.groups()
        ])
        # for mixed channel counts: (block, position in block) of each path of each output irrep
        where = {k: (b, members.index(k)) for b, members in enumerate(self._block_members) for k in members}
        self._path_sources = [[where[k] for k, p in enumerate(self.paths.paths) if p.ir_out == ir] for ir, _, _ in self.paths.groups()]
        self._gather: list[int] = []  # group of each output irrep
        for index, (ir, _, _) in enumerate(self.paths.groups()):
            g = self.group_dims.index(ir.dim)
            in_group = [k for k in order if self.paths.paths[k].ir_out.dim == ir.dim]
            positions = [in_group.index(k) for k, p in enumerate(self.paths.paths) if p.ir_out == ir]
            self.register_buffer(f"gather_{index}", torch.tensor(positions), persistent=False)
            self._gather.append(g)

    def path_weights(self, edge_radial: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """``[E, paths, U]``: the radial weights in path order (as e3nn's ``"uvu"`` weights)."""
        if not self.uniform:
            raise ValueError(f"path_weights needs one channel count for every irrep, got {self.irreps_in}")
        weights = torch.cat(self.radial(edge_radial, envelope), dim=1).view(len(edge_radial), len(self.paths), self.channels)
        return weights[:, torch.argsort(self.weight_paths)]

    def forward(
        self,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        envelope: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """Convolution of node features over the edges.

        Parameters
        ----------
        x: ``[N, irreps_in.dim]`` node features (e3nn layout).
        edge_sh: ``[E, irreps_sh.dim]`` spherical harmonics of the edge vectors.
        edge_radial: ``[E, B]`` radial basis (times envelope); envelope: ``[E]``.
        edge_index: ``[2, E]`` centre ``i`` and neighbour ``j`` of each edge.

        Returns
        -------
        ``[N, irreps_out.dim]`` (e3nn layout, one block of channels per path).
        """
        if not self.uniform:
            return self._forward_mixed(x, edge_sh, edge_radial, envelope, edge_index)
        num_nodes, num_edges = x.shape[0], edge_sh.shape[0]
        channels = self.channels
        centre, neighbour = edge_index
        features = to_channels(x, self.irreps_in)  # [N, U, D]
        # each input irrep's neighbour features as [E, 2l+1, U], contiguous for the matrix products
        neighbours = [
            features[:, :, start : start + dim].transpose(1, 2).contiguous().index_select(0, neighbour)
            for start, dim in self._inputs
        ]
        weights = self.radial(edge_radial, envelope)  # one [E, paths * U] per block
        per_group: list[list[torch.Tensor]] = [[] for _ in self.group_dims]
        for index, (group, dim, source, count) in enumerate(self._blocks):
            coupling = getattr(self, f"coupling_{index}")
            inputs = neighbours[source]
            per_edge = (edge_sh @ coupling).view(num_edges, dim * count, inputs.shape[1])
            products = torch.bmm(per_edge, inputs).view(num_edges, dim, count * channels)
            messages = (products * weights[index].unsqueeze(1)).view(num_edges, dim * count * channels)
            per_group[group].append(scatter_sum(messages, centre, num_nodes).view(num_nodes, dim, count, channels))
        summed = [parts[0] if len(parts) == 1 else torch.cat(parts, dim=2) for parts in per_group]
        blocks = []
        for index, group in enumerate(self._gather):
            block = summed[group].index_select(2, getattr(self, f"gather_{index}"))  # [N, d, paths, U]
            blocks.append(block.permute(0, 2, 3, 1).reshape(num_nodes, block.shape[1] * block.shape[2] * block.shape[3]))  # e3nn: path, channel, m
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-1)

    def _forward_mixed(
        self,
        x: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        envelope: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`forward` for irreps with different channel counts: the same products, block by
        block, each path gathered from its own block (paths of a group cannot share a tensor)."""
        num_nodes, num_edges = x.shape[0], edge_sh.shape[0]
        centre, neighbour = edge_index
        neighbours = [
            x[:, start : start + mul * dim].reshape(num_nodes, mul, dim).transpose(1, 2).contiguous().index_select(0, neighbour)
            for start, mul, dim in self._input_slices
        ]
        weights = self.radial(edge_radial, envelope)
        summed: list[torch.Tensor] = []
        for index, (_, dim, source, count) in enumerate(self._blocks):
            coupling = getattr(self, f"coupling_{index}")
            inputs = neighbours[source]
            channels = inputs.shape[2]
            per_edge = (edge_sh @ coupling).view(num_edges, dim * count, inputs.shape[1])
            products = torch.bmm(per_edge, inputs).view(num_edges, dim, count * channels)
            messages = (products * weights[index].unsqueeze(1)).view(num_edges, dim * count * channels)
            summed.append(scatter_sum(messages, centre, num_nodes).view(num_nodes, dim, count, channels))
        pieces = [
            summed[b][:, :, position].transpose(1, 2).reshape(num_nodes, -1)  # e3nn: channel, m
            for sources in self._path_sources
            for b, position in sources
        ]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def extra_repr(self) -> str:
        weights = sum(self.muls[p.i1] for p in self.paths.paths)
        return f"{self.irreps_in} x {self.irreps_sh} -> {self.irreps_out} | {len(self.paths)} paths, {weights} per-edge weights"


def _path_exists(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, ir_out: o3.Irrep) -> bool:
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in for _, ir2 in irreps_sh)


class InteractionBlock(nn.Module):
    """One NequIP layer: linear, edge convolution, linear, self-connection, gate, residual.

    The block produces the irreps of ``targets`` that the convolution can reach from its input
    (``l > 0`` irreps are gated by extra scalars). The residual connection adds the input's
    copy of each output irrep when every output irrep is also an input irrep.
    """

    residual_columns: torch.Tensor | None

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        targets: o3.Irreps,
        irreps_node_attrs: o3.Irreps,
        *,
        num_basis: int,
        radial_hidden: Sequence[int],
        radial_activation: str,
        nonlinearity_scalars: dict[str, str],
        nonlinearity_gates: dict[str, str],
        avg_num_neighbours: float,
        self_connection: bool,
        resnet: bool,
        self_connection_type: str = "element",
        envelope_on_hidden: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        reachable = [(mul, ir) for mul, ir in o3.Irreps(targets) if _path_exists(self.irreps_in, irreps_sh, ir)]
        scalars = o3.Irreps([(mul, ir) for mul, ir in reachable if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in reachable if ir.l > 0])
        gate_irrep = o3.Irrep("0e") if _path_exists(self.irreps_in, irreps_sh, o3.Irrep("0e")) else o3.Irrep("0o")
        gates = o3.Irreps([(mul, gate_irrep) for mul, _ in gated])

        def parity_key(ir: o3.Irrep) -> str:
            return "e" if ir.p == 1 else "o"

        self.gate = Gate(
            scalars, [activation(nonlinearity_scalars[parity_key(ir)]) for _, ir in scalars],
            gates, [activation(nonlinearity_gates[parity_key(ir)]) for _, ir in gates],
            gated,
        )
        self.linear_1 = o3.Linear(self.irreps_in, self.irreps_in)
        self.conv = EdgeConvolution(
            self.irreps_in, irreps_sh, {ir for _, ir in self.gate.irreps_in},
            num_basis, radial_hidden, radial_activation, avg_num_neighbours, envelope_on_hidden,
        )
        self.linear_2 = o3.Linear(self.conv.irreps_out, self.gate.irreps_in)
        self.self_connection: nn.Module | None = None
        self.self_connection_type = self_connection_type
        if self_connection and self_connection_type == "element":
            self.self_connection = o3.FullyConnectedTensorProduct(self.irreps_in, irreps_node_attrs, self.gate.irreps_in)
        elif self_connection and self_connection_type == "linear":
            self.self_connection = o3.Linear(self.irreps_in, self.gate.irreps_in)
        elif self_connection:
            raise ValueError(f"unknown self_connection_type {self_connection_type!r} (element, linear)")
        self.irreps_out: o3.Irreps = self.gate.irreps_out
        residual = _residual_columns(self.irreps_in, self.irreps_out) if resnet else None
        self.resnet = residual is not None
        identity = residual is not None and torch.equal(residual, torch.arange(self.irreps_in.dim))
        self.register_buffer("residual_columns", None if identity else residual, persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        envelope: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """``x [N, irreps_in.dim]``, ``node_attrs [N, F]`` and edge tensors -> ``[N, irreps_out.dim]``."""
        update = self.linear_2(self.conv(self.linear_1(x), edge_sh, edge_radial, envelope, edge_index))
        if self.self_connection is not None:
            sc = self.self_connection(x, node_attrs) if self.self_connection_type == "element" else self.self_connection(x)
            update = update + sc
        out = self.gate(update)
        if self.resnet:
            out = out + (x if self.residual_columns is None else x.index_select(1, self.residual_columns))
        return out

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"{self.irreps_in} -> {self.irreps_out}, resnet={self.resnet} | {weights} weights"


def _residual_columns(irreps_in: o3.Irreps, irreps_out: o3.Irreps) -> torch.Tensor | None:
    """Columns of the input holding each output irrep, or ``None`` if some output irrep is new."""
    slices: dict[tuple[int, o3.Irrep], slice] = {}
    for (mul, ir), s in zip(irreps_in, irreps_in.slices(), strict=True):
        slices.setdefault((mul, ir), s)
    columns = []
    for mul, ir in irreps_out:
        if (mul, ir) not in slices:
            return None
        s = slices[(mul, ir)]
        columns.append(torch.arange(s.start, s.stop))
    return torch.cat(columns) if columns else None
