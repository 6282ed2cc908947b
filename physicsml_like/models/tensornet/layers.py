"""TensorNet's building blocks: the rank-2 tensor algebra, the embedding and the interaction.

A feature is ``[N, F, 3, 3]``: ``F`` channels of a 3x3 Cartesian tensor per atom. Under a
rotation ``R`` every channel transforms as ``R X R^T``; its trace part ``I``, skew part ``A`` and
symmetric traceless part ``S`` transform separately (as a scalar, a vector and a rank-2
irreducible tensor), so channel mixing may act on each with its own weights, and the squared
Frobenius norms of the parts are invariants.
"""

from __future__ import annotations

import torch
from torch import nn

from ...nn.mlp import activation

__all__ = [
    "TensorEmbedding",
    "TensorInteraction",
    "TensorLinear",
    "compose",
    "decompose",
    "part_norms",
    "skew_from_vector",
    "squared_norm",
]


def decompose(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x [..., 3, 3]`` -> its parts in compact form: the scalar ``t`` of the trace part
    ``t Id`` (``[...]``), the vector ``a`` of the skew part ``[a]_x`` (``[..., 3]``) and the
    symmetric traceless part ``S`` (``[..., 3, 3]``), with ``x = t Id + [a]_x + S``."""
    t = x.diagonal(dim1=-2, dim2=-1).sum(-1) / 3.0
    a = 0.5 * torch.stack(
        [x[..., 2, 1] - x[..., 1, 2], x[..., 0, 2] - x[..., 2, 0], x[..., 1, 0] - x[..., 0, 1]], dim=-1
    )
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    return t, a, 0.5 * (x + x.transpose(-2, -1)) - t[..., None, None] * eye


def compose(t: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``t Id + [a]_x + S`` from the compact parts of :func:`decompose`."""
    eye = torch.eye(3, dtype=s.dtype, device=s.device)
    return t[..., None, None] * eye + skew_from_vector(a) + s


def part_norms(t: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared Frobenius norms of ``t Id``, ``[a]_x`` and ``S`` (each invariant)."""
    return 3.0 * t * t, 2.0 * (a * a).sum(-1), squared_norm(s)


def squared_norm(x: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm over the last two axes: ``[..., 3, 3] -> [...]`` (invariant)."""
    return (x * x).sum((-2, -1))


def skew_from_vector(v: torch.Tensor) -> torch.Tensor:
    """``v [..., 3]`` -> the skew matrix ``[v]_x`` with ``[v]_x u = v x u``, ``[..., 3, 3]``."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    rows = [torch.stack(r, dim=-1) for r in ((zero, -z, y), (z, zero, -x), (-y, x, zero))]
    return torch.stack(rows, dim=-2)


class TensorLinear(nn.Module):
    """Channel mixing ``[N, F_in, ...] -> [N, F_out, ...]`` without bias: the same linear map of
    channels for every tensor component, so it commutes with rotations (and may act on the
    compact scalar, vector or matrix form of a part alike)."""

    lora_layout = "out_in"  # its weight is one [out, in] channel-mixing matrix (see nn.lora)

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Linear's default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.movedim(torch.movedim(x, 1, -1) @ self.weight.t(), -1, 1)

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"{in_f} -> {out_f} channels | {self.weight.numel()} weights"


class TensorEmbedding(nn.Module):
    """Initial tensor features from the elements of both ends of every edge and its direction.

    Each edge ``i -> j`` contributes ``f_I(r) Id + f_A(r) [r_hat]_x + f_S(r) (r_hat r_hat^T - Id/3)``
    per channel, with ``f = W rbf(r) * u(r) * Z_ij`` (``Z_ij`` a learned function of both
    elements, ``u`` the envelope). Summed over neighbours, the parts are normalised by a
    learned function of their norms and mixed per part.
    """

    def __init__(self, num_node_features: int, num_features: int, num_radial: int, act: str) -> None:
        super().__init__()
        self.num_features = num_features
        self.element_embedding = nn.Linear(num_node_features, num_features)
        self.pair_embedding = nn.Linear(2 * num_features, num_features)
        self.radial_projection = nn.Linear(num_radial, 3 * num_features)
        self.norm = nn.LayerNorm(num_features)
        self.scalar_net = nn.Sequential(
            nn.Linear(num_features, 2 * num_features), activation(act),
            nn.Linear(2 * num_features, 3 * num_features), activation(act),
        )
        self.mix = nn.ModuleList(TensorLinear(num_features, num_features) for _ in range(3))

    def forward(
        self, node_attrs: torch.Tensor, edge_index: torch.Tensor, unit_vectors: torch.Tensor,
        radial: torch.Tensor, envelope: torch.Tensor,
    ) -> torch.Tensor:
        """Initial features.

        Parameters
        ----------
        node_attrs: ``[N, F_in]``; edge_index: ``[2, E]``; unit_vectors: ``[E, 3]`` (zero for
        zero-length edges); radial: ``[E, R]``; envelope: ``[E]``.

        Returns
        -------
        ``[N, F, 3, 3]``.
        """
        i, j = edge_index
        num_nodes, f = node_attrs.shape[0], self.num_features
        h = self.element_embedding(node_attrs)
        pair = self.pair_embedding(torch.cat([h[i], h[j]], dim=-1))
        coefficients = (self.radial_projection(radial) * envelope.unsqueeze(-1)).view(-1, 3, f) * pair.unsqueeze(1)
        c_iso, c_skew, c_sym = coefficients.unbind(1)
        # sum each part over neighbours in its own small shape, then build the 3x3 tensors
        iso = coefficients.new_zeros((num_nodes, f)).index_add_(0, i, c_iso)
        vector = coefficients.new_zeros((num_nodes, f, 3)).index_add_(0, i, c_skew.unsqueeze(-1) * unit_vectors.unsqueeze(1))
        outer = unit_vectors.unsqueeze(-1) * unit_vectors.unsqueeze(-2)
        traceless = outer - torch.eye(3, dtype=outer.dtype, device=outer.device) * (unit_vectors * unit_vectors).sum(-1)[:, None, None] / 3.0
        sym = coefficients.new_zeros((num_nodes, f, 3, 3)).index_add_(0, i, c_sym[..., None, None] * traceless.unsqueeze(1))
        norms = squared_norm(compose(iso, vector, sym))
        scales = self.scalar_net(self.norm(norms)).view(num_nodes, f, 3)
        iso = self.mix[0](iso) * scales[:, :, 0]
        vector = self.mix[1](vector) * scales[:, :, 1, None]
        sym = self.mix[2](sym) * scales[:, :, 2, None, None]
        return compose(iso, vector, sym)

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"{self.element_embedding.in_features} -> {self.num_features}x(3x3) | {weights} weights"


class TensorInteraction(nn.Module):
    """One TensorNet interaction: neighbours' tensor parts weighted by radial functions are
    multiplied with the atom's own features (matrix products keep equivariance), normalised,
    mixed per part, and added as ``X + dX + dX^2``.
    """

    def __init__(self, num_features: int, num_radial: int, act: str, equivariance: str) -> None:
        super().__init__()
        if equivariance not in ("O(3)", "SO(3)"):
            raise ValueError(f"equivariance must be 'O(3)' or 'SO(3)', got {equivariance!r}")
        self.num_features = num_features
        self.equivariance = equivariance
        self.radial_net = nn.Sequential(
            nn.Linear(num_radial, num_features), activation(act),
            nn.Linear(num_features, 2 * num_features), activation(act),
            nn.Linear(2 * num_features, 3 * num_features), activation(act),
        )
        self.mix_before = nn.ModuleList(TensorLinear(num_features, num_features) for _ in range(3))
        self.mix_after = nn.ModuleList(TensorLinear(num_features, num_features) for _ in range(3))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """``x [N, F, 3, 3]``, ``edge_index [2, E]``, ``radial [E, R]``, ``envelope [E]`` -> ``[N, F, 3, 3]``."""
        i, j = edge_index
        f = self.num_features
        weights = (self.radial_net(radial) * envelope.unsqueeze(-1)).view(-1, f, 3)
        x = x / (squared_norm(x) + 1.0)[..., None, None]
        t, a, sym = (mix(p) for mix, p in zip(self.mix_before, decompose(x), strict=True))
        own = compose(t, a, sym)
        # each part travels in its compact form: 1 + 3 + 9 numbers a channel per edge
        messages = compose(
            torch.zeros_like(t).index_add_(0, i, weights[:, :, 0] * t[j]),
            torch.zeros_like(a).index_add_(0, i, weights[:, :, 1, None] * a[j]),
            torch.zeros_like(sym).index_add_(0, i, weights[:, :, 2, None, None] * sym[j]),
        )
        if self.equivariance == "O(3)":
            product = own @ messages + messages @ own
        else:
            product = 2.0 * own @ messages
        product = product / (squared_norm(product) + 1.0)[..., None, None]
        update = compose(*(mix(p) for mix, p in zip(self.mix_after, decompose(product), strict=True)))
        return x + update + update @ update

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"{self.num_features}x(3x3) -> {self.num_features}x(3x3), {self.equivariance} | {weights} weights"
