"""PaiNN's blocks: message, update, and the gated equivariant readout.

Scalar features are ``[N, F]``, vector features ``[N, 3, F]`` (a 3-vector per channel). Linear
maps act on the channel axis only and vectors are only scaled by invariants, so vector
features rotate with the structure and scalars stay invariant.
"""

from __future__ import annotations

import torch
from torch import nn

from ...nn.mlp import MLP, activation

__all__ = ["GatedEquivariantBlock", "PaiNNMessage", "PaiNNUpdate", "stable_norm"]

# added under the square root of vector norms: the gradient of |v| is undefined at v = 0, and
# vector features start at exactly zero
_NORM_EPSILON = 1e-8


def stable_norm(v: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """``sqrt(|v|^2 + eps)`` along ``dim``: differentiable everywhere, invariant."""
    return torch.sqrt((v * v).sum(dim) + _NORM_EPSILON)


class PaiNNMessage(nn.Module):
    """Message block (Schütt et al. 2021, eq. 7-8).

    Neighbour ``j``'s scalars through an MLP, times a radial filter ``W(r_ij)``, give three
    channel sets: a scalar message, a gate on ``j``'s vectors and a weight on the direction
    ``r_hat_ij``. The filter is given (it may be shared between interactions).
    """

    def __init__(self, num_features: int, act: str) -> None:
        super().__init__()
        self.num_features = num_features
        self.context = MLP([num_features, num_features, 3 * num_features], act)

    def forward(
        self, s: torch.Tensor, v: torch.Tensor, edge_index: torch.Tensor, filters: torch.Tensor, unit_vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Residual updates.

        Parameters
        ----------
        s: ``[N, F]``; v: ``[N, 3, F]``; edge_index: ``[2, E]``; filters: ``[E, 3F]`` (with the
        envelope); unit_vectors: ``[E, 3]``.

        Returns
        -------
        ``(ds [N, F], dv [N, 3, F])``.
        """
        i, j = edge_index
        x = self.context(s)[j] * filters
        ds, gate_v, gate_r = torch.split(x, self.num_features, dim=-1)
        dv = gate_v.unsqueeze(1) * v[j] + gate_r.unsqueeze(1) * unit_vectors.unsqueeze(-1)
        return torch.zeros_like(s).index_add_(0, i, ds), torch.zeros_like(v).index_add_(0, i, dv)

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"features={self.num_features} | {weights} weights"


class PaiNNUpdate(nn.Module):
    """Update block (Schütt et al. 2021, eq. 9-11): atom-wise mixing of scalar and vector
    channels through ``U v``, ``V v``, their scalar products and the norms of ``V v``."""

    def __init__(self, num_features: int, act: str) -> None:
        super().__init__()
        self.num_features = num_features
        self.vector_mix = nn.Linear(num_features, 2 * num_features, bias=False)
        self.context = MLP([2 * num_features, num_features, 3 * num_features], act)

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s [N, F]``, ``v [N, 3, F]`` -> residual updates ``(ds [N, F], dv [N, 3, F])``."""
        u_v, v_v = torch.split(self.vector_mix(v), self.num_features, dim=-1)
        a = self.context(torch.cat([s, stable_norm(v_v)], dim=-1))
        a_vv, a_sv, a_ss = torch.split(a, self.num_features, dim=-1)
        dv = a_vv.unsqueeze(1) * u_v
        ds = a_ss + a_sv * (u_v * v_v).sum(1)
        return ds, dv

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"features={self.num_features} | {weights} weights"


class GatedEquivariantBlock(nn.Module):
    """Gated equivariant block (Schütt et al. 2021, eq. 12): scalars and vector norms give new
    scalars and per-channel gates that scale a linear mix of the vectors.

    ``(s [N, S_in], v [N, 3, V_in]) -> (s [N, S_out], v [N, 3, V_out])``.
    """

    def __init__(
        self, scalars_in: int, vectors_in: int, scalars_out: int, vectors_out: int, hidden: int,
        act: str, scalar_activation: bool,
    ) -> None:
        super().__init__()
        self.sizes = (scalars_in, vectors_in, scalars_out, vectors_out)
        self.vectors_out = vectors_out
        self.vector_mix = nn.Linear(vectors_in, 2 * vectors_out, bias=False)
        self.context = MLP([scalars_in + vectors_out, hidden, scalars_out + vectors_out], act)
        self.scalar_activation = activation(act) if scalar_activation else nn.Identity()

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s [N, S_in]``, ``v [N, 3, V_in]`` -> ``(s [N, S_out], v [N, 3, V_out])``."""
        mixed, gated = torch.split(self.vector_mix(v), self.vectors_out, dim=-1)
        x = self.context(torch.cat([s, stable_norm(mixed)], dim=-1))
        s_out, gates = torch.split(x, [x.shape[-1] - self.vectors_out, self.vectors_out], dim=-1)
        return self.scalar_activation(s_out), gates.unsqueeze(1) * gated

    def extra_repr(self) -> str:
        s_in, v_in, s_out, v_out = self.sizes
        weights = sum(p.numel() for p in self.parameters())
        return f"{s_in}s+{v_in}v -> {s_out}s+{v_out}v | {weights} weights"
