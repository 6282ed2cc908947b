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

import itertools
import math
from collections.abc import Sequence

import torch
from e3nn import o3
from e3nn.math import normalize2mom
from torch import nn

from ...nn.equivariant import redraw_normal, uniform_channels
from ...nn.mlp import activation
from .convolution import Edges, EdgeTensorProduct
from .linear import ElementLinear, IrrepsLinear

__all__ = ["InteractionBlock", "RadialMLP"]


class RadialMLP(nn.Module):
    """MLP from the radial basis to the tensor-product weights, e3nn's ``FullyConnectedNet``.

    No biases; weights ``N(0, 1)``; each layer ``x @ W / sqrt(fan_in)``; the activation scaled
    to unit second moment under a standard normal input. The scale of each activation is folded
    into the next layer's weight factor, so a hidden layer costs one matrix product and one
    activation (this is the largest per-edge computation of the model).

    Shapes: ``[E, sizes[0]] -> [E, sizes[-1]]``.

    Examples
    --------
    >>> RadialMLP([8, 64, 64, 96], "silu")
    RadialMLP(8 -> 64 -> 64 -> 96 | act=silu | 10752 weights)
    """

    def __init__(self, sizes: Sequence[int], activation_name: str | None) -> None:
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.activation_name = activation_name
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(a, b)) for a, b in itertools.pairwise(self.sizes))
        self.act = activation(activation_name) if activation_name else nn.Identity()
        second_moment = normalize2mom(self.act).cst if activation_name else 1.0
        self._scales = [
            (second_moment if k else 1.0) / math.sqrt(a) for k, a in enumerate(self.sizes[:-1])
        ]

    def reset_parameters(self) -> None:
        redraw_normal(self.weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for k, (weight, scale) in enumerate(zip(self.weights, self._scales, strict=True)):
            x = x @ (weight * scale)
            if k < last:
                x = self.act(x)
        return x

    def extra_repr(self) -> str:
        weights = sum(w.numel() for w in self.weights)
        return f"{' -> '.join(map(str, self.sizes))} | act={self.activation_name} | {weights} weights"

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
        self.channels = uniform_channels(self.irreps_in, "the node irreps")
        self.linear_up = IrrepsLinear(self.irreps_in, self.irreps_in)
        self.tensor_product = EdgeTensorProduct(self.irreps_in, irreps_sh, self.irreps_target)
        self.radial_mlp = RadialMLP([num_radial, *radial_hidden, self.tensor_product.weight_numel], radial_activation)
        self.linear = IrrepsLinear(self.tensor_product.irreps_out, self.irreps_target)
        if residual:
            self.skip = ElementLinear(self.irreps_in, o3.Irreps(irreps_skip), num_elements)
        else:
            self.skip = ElementLinear(self.irreps_target, self.irreps_target, num_elements)

    def reset_parameters(self) -> None:
        for module in (self.linear_up, self.radial_mlp, self.linear, self.skip):
            module.reset_parameters()

    def forward(
        self,
        node_feats: torch.Tensor,
        element_onehot: torch.Tensor | None,
        sh: torch.Tensor,
        radial: torch.Tensor,
        edges: Edges,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Atomic basis and skip connection.

        Parameters
        ----------
        node_feats: ``[N, D_in, c]``.
        element_onehot: ``[N, E]``, or ``None`` with one element.
        sh: ``[E_edges, D_sh]`` harmonics of the sender -> receiver directions.
        radial: ``[bonds, num_radial]`` radial basis (with the cutoff envelope) of each bond.
        edges: receivers, senders and the bond of each edge.

        Returns
        -------
        ``A`` ``[N, D_target, c]`` and the skip term ``[N, D_skip, c]`` (``None`` unless residual).
        """
        skip = self.skip(node_feats, element_onehot) if self.residual else None
        summed = self.tensor_product(self.linear_up(node_feats), sh, self.radial_mlp(radial), edges)
        basis = self.linear(summed) / self.avg_num_neighbours
        if not self.residual:
            basis = self.skip(basis, element_onehot)
        return basis, skip

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        kind = "residual" if self.residual else "element-weighted"
        return f"{self.irreps_in} -> {self.irreps_target}, {kind}, avg_num_neighbours={self.avg_num_neighbours:.3g} | {weights} weights"
