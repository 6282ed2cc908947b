"""Allegro's layers: weighted spherical harmonics, the pair tensor product, one Allegro layer.

Pair tensors are channel-major ``[E, U, D]`` (see :mod:`physicsml_like.nn.equivariant`): ``U``
channels (``env_embed_multiplicity``) of the irreps concatenated along ``D``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3
from torch import nn

from ...nn.equivariant import ChannelMixing, CouplingPaths, ScalarMLP
from ...nn.scatter import scatter_sum

__all__ = ["AllegroLayer", "PairTensorProduct", "WeightedHarmonics"]


class WeightedHarmonics(nn.Module):
    """Spherical harmonics scaled by one weight per (channel, irrep): ``[E, D]`` and weights
    ``[E, U * num_irreps]`` -> ``[E, U, D]``. Allegro's embedding of a pair, and the summand of an
    environment embedding."""

    expand: torch.Tensor

    def __init__(self, irreps: o3.Irreps, channels: int) -> None:
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.channels = channels
        expand = torch.zeros(len(self.irreps), self.irreps.dim)
        for k, s in enumerate(self.irreps.slices()):
            expand[k, s] = 1.0
        self.register_buffer("expand", expand, persistent=False)

    @property
    def num_weights(self) -> int:
        return self.channels * len(self.irreps)

    def forward(self, harmonics: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``harmonics [E, D]``, ``weights [E, U * num_irreps]`` -> ``[E, U, D]``."""
        num_edges = harmonics.shape[0]
        per_component = weights.reshape(num_edges * self.channels, len(self.irreps)) @ self.expand
        return per_component.view(num_edges, self.channels, self.irreps.dim) * harmonics.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"{self.channels}x({self.irreps}) | {self.num_weights} per-edge weights"


class PairTensorProduct(nn.Module):
    """Channel-wise tensor product of pair tensors with environment embeddings (e3nn's
    ``"uuu"``, one output slot per path, no weights): ``[E, U, D1] x [E, U, D2]`` -> one
    ``[E, U, paths * (2l + 1)]`` tensor per output irrep (as :meth:`CouplingPaths.groups`).

    Two equivalent orders, chosen by size (both one matrix product for every path at once):
    with many output columns, the outer product of the inputs times the Clebsch-Gordan matrix
    (``[E, U, D1 * D2]`` in between); with few (a last layer that keeps scalars only), the first
    input times the Clebsch-Gordan tensor, then contracted with the second (``[E, U, D2 * K]``).
    Component pairs that no path reads keep their zero rows, and the output is split with
    ``torch.split``: gathering or slicing along the last dimension of per-edge tensors is far
    slower on a CPU (a full-size zero tensor per slice in every backward pass).
    """

    coupling: torch.Tensor

    def __init__(self, irreps1: o3.Irreps, irreps2: o3.Irreps, targets: Sequence[o3.Irrep]) -> None:
        super().__init__()
        self.paths = CouplingPaths(irreps1, irreps2, targets)
        if not len(self.paths):
            raise ValueError(f"no tensor-product path from {irreps1} x {irreps2} to {list(map(str, targets))}")
        coupling = self.paths.coupling()  # [D1, D2, K]
        self.dims = (coupling.shape[0], coupling.shape[1])
        self.num_columns = coupling.shape[2]
        self.outer_first = self.num_columns >= self.dims[0]
        self.group_widths = [count * ir.dim for ir, _, count in self.paths.groups()]
        # outer product first: [D1 * D2, K]; else [D1, D2 * K]
        coupling = coupling.reshape(-1, self.num_columns) if self.outer_first else coupling.reshape(self.dims[0], -1)
        self.register_buffer("coupling", coupling.contiguous(), persistent=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> list[torch.Tensor]:
        """``x1 [E, U, D1]``, ``x2 [E, U, D2]`` -> ``[E, U, paths * (2l + 1)]`` per output irrep."""
        num_edges, channels = x1.shape[0], x1.shape[1]
        rows = num_edges * channels
        if self.outer_first:
            outer = torch.bmm(x1.reshape(rows, self.dims[0], 1), x2.reshape(rows, 1, self.dims[1]))
            out = outer.view(rows, self.dims[0] * self.dims[1]) @ self.coupling
        else:
            partial = (x1.reshape(rows, self.dims[0]) @ self.coupling).view(rows, self.dims[1], self.num_columns)
            out = torch.bmm(x2.reshape(rows, 1, self.dims[1]), partial)
        return list(out.view(num_edges, channels, self.num_columns).split(self.group_widths, dim=-1))

    def extra_repr(self) -> str:
        outputs = " + ".join(f"{count}x{ir}" for ir, _, count in self.paths.groups())
        return f"{self.paths.irreps1} x {self.paths.irreps2} -> {outputs} | {len(self.paths)} paths, no weights"


class AllegroLayer(nn.Module):
    """One Allegro layer on every pair ``ij`` (centre ``i``):

    1. environment weights ``w_ik = MLP(x_ik)`` and the centre's embedding
       ``Γ_i = sum_k u(r_ik) w_ik Y(r_ik) / sqrt(n)``;
    2. ``V_ij <- Mix(V_ij ⊗ Γ_i)``, channel by channel;
    3. latent ``x_ij <- (x_ij + c MLP([x_ij, scalars of V_ij ⊗ Γ_i]) u'(r_ij)) / sqrt(1 + c^2)``.

    ``u`` is this layer's envelope and ``u'`` the next one's (per-layer cutoffs), so a pair beyond
    a layer's cutoff smoothly stops contributing to it.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_out: o3.Irreps | None,
        channels: int,
        latent_size: int,
        latent_mlp: Sequence[int],
        env_embed_mlp: Sequence[int],
        activation_name: str,
        *,
        embeds_pairs: bool,
        resnet: bool,
        resnet_ratio: float,
        resnet_learnable: bool,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out) if irreps_out is not None else None
        self.channels = channels
        self.environment = WeightedHarmonics(irreps_sh, channels)
        self.pair_embedding = WeightedHarmonics(self.irreps_in, channels) if embeds_pairs else None
        num_weights = self.environment.num_weights + (self.pair_embedding.num_weights if self.pair_embedding is not None else 0)
        self.env_embed = ScalarMLP([latent_size, *env_embed_mlp, num_weights], activation_name)
        targets = [ir for _, ir in self.irreps_out] if self.irreps_out is not None else []
        scalar = o3.Irrep("0e")
        self.tp = PairTensorProduct(self.irreps_in, irreps_sh, list(dict.fromkeys([scalar, *targets])))
        groups = self.tp.paths.groups()
        if groups[0][0] != scalar:
            raise ValueError(f"the pair tensor product {self.tp} gives no invariant scalars")
        self.num_scalars = groups[0][2]
        self.mixing = ChannelMixing(channels, [(ir, count) for ir, _, count in groups if ir in targets], channels) if targets else None
        self.mixed_groups = [g for g, (ir, _, _) in enumerate(groups) if ir in targets]
        self.latent = ScalarMLP([latent_size + channels * self.num_scalars, *latent_mlp], activation_name, output_activation=True)
        self.resnet = resnet
        ratio = torch.logit(torch.tensor(float(resnet_ratio)))
        if resnet_learnable:
            self.resnet_logit = nn.Parameter(ratio)
        else:
            self.register_buffer("resnet_logit", ratio)

    def forward(
        self,
        latents: torch.Tensor,
        tensors: torch.Tensor | None,
        harmonics: torch.Tensor,
        envelope: torch.Tensor,
        next_envelope: torch.Tensor,
        centre: torch.Tensor,
        num_nodes: int,
        norm: float,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One layer on all pairs.

        Parameters
        ----------
        latents: ``[E, latent]``; tensors: ``[E, U, D_in]`` pair tensors (``None`` for the first
            layer, which embeds the pairs itself); harmonics: ``[E, D_sh]``; envelope,
            next_envelope: ``[E]``; centre: ``[E]`` centre atom of each pair.

        Returns
        -------
        ``latents [E, latent]`` and ``tensors [E, U, D_out]`` (``None`` when nothing reads them).
        """
        num_edges = latents.shape[0]
        weights = self.env_embed(latents)
        env_weights = weights
        if self.pair_embedding is not None:
            env_weights, pair_weights = weights.split([self.environment.num_weights, self.pair_embedding.num_weights], dim=1)
            tensors = self.pair_embedding(harmonics, pair_weights)
        if tensors is None:
            raise ValueError("an Allegro layer after the first needs the previous layer's pair tensors")
        summands = self.environment(harmonics, env_weights) * envelope.view(-1, 1, 1)
        width = summands.shape[1] * summands.shape[2]
        embedding = scatter_sum(summands.reshape(num_edges, width), centre, num_nodes).view(num_nodes, self.channels, -1) / norm
        products = self.tp(tensors, embedding.index_select(0, centre))  # per output irrep [E, U, width]
        scalars = products[0].reshape(num_edges, self.channels * self.num_scalars)
        new_tensors = self.mixing([products[g] for g in self.mixed_groups]) if self.mixing is not None else None
        update = self.latent(torch.cat([latents, scalars], dim=-1)) * next_envelope.unsqueeze(-1)
        if self.resnet:
            ratio = torch.sigmoid(self.resnet_logit)
            latents = (latents + ratio * update) / torch.sqrt(1 + ratio * ratio)
        else:
            latents = update
        return latents, new_tensors

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters() if p.requires_grad)
        out = self.irreps_out if self.irreps_out is not None else "scalars only"
        return f"{self.channels}x({self.irreps_in}) -> {self.channels}x({out}), resnet={self.resnet} | {weights} weights"
