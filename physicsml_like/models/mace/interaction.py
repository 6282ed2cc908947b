"""MACE's interaction: the atomic basis ``A_i`` from neighbours' features and edge geometry.

``A_i = W / avg_neighbours * sum_j R(r_ij) (W_up h_j) ⊗ Y(r_ij)``: sender features are mixed
(``linear_up``), coupled channel by channel with the spherical harmonics of the edge direction,
each path and channel weighted by a radial MLP of the distance, summed over neighbours and mixed
again (``linear``). The two interaction kinds of the reference differ in where the element
enters: the plain one (the default first layer) multiplies the result by element-dependent
weights; the residual one instead returns an element-dependent linear map of the input
features, added after the product basis as a skip connection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn

from ...nn.mlp import activation
from ...nn.scatter import scatter_sum
from .linear import ElementLinear, IrrepsLinear, channels_of

__all__ = ["EdgeTensorProduct", "InteractionBlock"]


class EdgeTensorProduct(nn.Module):
    """Channel-wise tensor product of sender features with edge spherical harmonics.

    For every path ``l_in ⊗ l_sh -> l_out`` (with ``l_out`` among the target irreps) and channel,
    ``out = w[e, path, c] * sqrt(2 l_out + 1) * C(l_in, l_sh, l_out) h_j ⊗ Y(r_ij)``, e3nn's
    ``"uvu"`` tensor product with per-edge weights. The Wigner coefficients of all paths are
    folded with the harmonics first (``[E, D_out, D_in]``, independent of the channels), so
    the per-channel work is one small batched matrix product per edge.

    Shapes: ``h_sender [E, D_in, c]``, ``sh [E, D_sh]``, ``weights [E, num_paths, c]`` ->
    ``[E, D_out, c]`` with irreps :attr:`irreps_out` (one block per path, grouped by irrep).

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
        paths = []  # (l_out irrep, input slice, sh slice, input irrep, sh irrep)
        for (_, ir_in), in_slice in zip(self.irreps_in, self.irreps_in.slices(), strict=True):
            for (_, ir_sh), sh_slice in zip(self.irreps_sh, self.irreps_sh.slices(), strict=True):
                for ir_out in ir_in * ir_sh:
                    if ir_out in targets:
                        paths.append((ir_out, in_slice, sh_slice, ir_in, ir_sh))
        paths.sort(key=lambda path: path[0])  # stable: blocks of one irrep become adjacent
        self.num_paths = len(paths)
        self.irreps_out = o3.Irreps([(self.channels, path[0]) for path in paths])
        d_out, d_in, d_sh = self.irreps_out.dim // self.channels, self.irreps_in.dim // self.channels, self.irreps_sh.dim
        coefficients = torch.zeros(d_out, d_in, d_sh, dtype=torch.float64)
        path_of_row = []
        row = 0
        for k, (ir_out, in_slice, sh_slice, ir_in, ir_sh) in enumerate(paths):
            w3j = o3.wigner_3j(ir_in.l, ir_sh.l, ir_out.l, dtype=torch.float64) * math.sqrt(ir_out.dim)
            in_rows = slice(in_slice.start // self.channels, in_slice.stop // self.channels)
            coefficients[row : row + ir_out.dim, in_rows, sh_slice] = w3j.permute(2, 0, 1)
            path_of_row += [k] * ir_out.dim
            row += ir_out.dim
        dtype = torch.get_default_dtype()
        # [D_sh, D_out * D_in]: sh @ this gives the per-edge coupling matrix
        self.register_buffer("coefficients", coefficients.reshape(-1, d_sh).T.contiguous().to(dtype), persistent=False)
        self.register_buffer("path_of_row", torch.tensor(path_of_row, dtype=torch.long), persistent=False)
        self._d_out, self._d_in = d_out, d_in

    @property
    def weight_numel(self) -> int:
        """Weights each edge needs (from the radial MLP)."""
        return self.num_paths * self.channels

    def forward(self, h_sender: torch.Tensor, sh: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        n_edges = sh.shape[0]
        coupling = (sh @ self.coefficients).view(n_edges, self._d_out, self._d_in)
        # scalar inputs need only an outer product
        out = coupling * h_sender if self._d_in == 1 else torch.bmm(coupling, h_sender)
        return out * weights.index_select(1, self.path_of_row)

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} ⊗ {self.irreps_sh} -> {self.irreps_out} | "
            f"{self.num_paths} paths, {self.weight_numel} weights per edge"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class InteractionBlock(nn.Module):
    """One MACE interaction (the reference's ``RealAgnosticInteractionBlock`` or, with
    ``residual``, ``RealAgnosticResidualInteractionBlock``).

    Parameters
    ----------
    irreps_in: node features entering the layer (``c x ...``).
    irreps_sh: spherical harmonics of the edge directions.
    irreps_target: irreps of the atomic basis ``A`` (``c x`` each harmonic).
    irreps_skip: output irreps of the residual skip connection (the layer's hidden irreps).
    num_elements: one-hot width of the element-dependent weights.
    num_radial: radial basis functions per edge.
    radial_hidden: hidden widths of the radial MLP.
    radial_activation: its activation (normalised to unit second moment, as e3nn does).
    avg_num_neighbours: the neighbour sum is divided by it.
    residual: skip connection instead of element-dependent weights on the message.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_target: o3.Irreps,
        irreps_skip: o3.Irreps,
        *,
        num_elements: int,
        num_radial: int,
        radial_hidden: Sequence[int],
        radial_activation: str | None,
        avg_num_neighbours: float,
        residual: bool,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_target = o3.Irreps(irreps_target)
        self.avg_num_neighbours = float(avg_num_neighbours)
        self.residual = residual
        self.channels = channels_of(self.irreps_in, "the node irreps")
        self.linear_up = IrrepsLinear(self.irreps_in, self.irreps_in)
        self.tensor_product = EdgeTensorProduct(self.irreps_in, irreps_sh, self.irreps_target)
        act = activation(radial_activation) if radial_activation else None
        self.radial_mlp = FullyConnectedNet([num_radial, *radial_hidden, self.tensor_product.weight_numel], act)
        self.linear = IrrepsLinear(self.tensor_product.irreps_out, self.irreps_target)
        if residual:
            self.skip = ElementLinear(self.irreps_in, o3.Irreps(irreps_skip), num_elements)
        else:
            self.skip = ElementLinear(self.irreps_target, self.irreps_target, num_elements)

    def reset_parameters(self) -> None:
        """Weights from their initial distributions (the radial MLP's are e3nn's ``N(0, 1)``)."""
        for module in (self.linear_up, self.linear, self.skip):
            module.reset_parameters()
        with torch.no_grad():
            for weight in self.radial_mlp.parameters():
                weight.normal_()

    def forward(
        self,
        node_feats: torch.Tensor,
        element_onehot: torch.Tensor | None,
        sh: torch.Tensor,
        radial: torch.Tensor,
        receivers: torch.Tensor,
        senders: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Atomic basis and skip connection.

        Parameters
        ----------
        node_feats: ``[N, D_in, c]``.
        element_onehot: ``[N, E]``, or ``None`` with one element.
        sh: ``[E_edges, D_sh]`` harmonics of the sender -> receiver directions.
        radial: ``[E_edges, num_radial]`` radial basis (with the cutoff envelope).
        receivers, senders: ``[E_edges]``.

        Returns
        -------
        ``A`` ``[N, D_target, c]`` and the skip term ``[N, D_skip, c]`` (``None`` unless residual).
        """
        skip = self.skip(node_feats, element_onehot) if self.residual else None
        h = self.linear_up(node_feats)
        weights = self.radial_mlp(radial).view(radial.shape[0], self.tensor_product.num_paths, self.channels)
        messages = self.tensor_product(h.index_select(0, senders), sh, weights)
        summed = scatter_sum(messages, receivers, node_feats.shape[0])
        basis = self.linear(summed) / self.avg_num_neighbours
        if not self.residual:
            basis = self.skip(basis, element_onehot)
        return basis, skip

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        kind = "residual" if self.residual else "element-weighted"
        return f"{self.irreps_in} -> {self.irreps_target}, {kind}, avg_num_neighbours={self.avg_num_neighbours:.3g} | {weights} weights"
