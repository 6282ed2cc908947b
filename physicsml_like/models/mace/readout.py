"""Per-layer readouts: every MACE layer adds its own contribution to the per-atom outputs."""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.math import normalize2mom
from torch import nn

from ...nn.equivariant import redraw_normal, uniform_channels
from ...nn.mlp import activation

__all__ = ["Readout"]


class Readout(nn.Module):
    """Per-atom scalars (and l=1 vectors) from one layer's features.

    Scalars come from the layer's ``0e`` channels through a linear map (``hidden=0``, the
    reference's linear readout) or a one-hidden-layer MLP (its non-linear readout of the last
    layer, with the activation normalised to unit second moment as e3nn does). Vectors, when
    asked for, are a linear map of the ``1o`` channels. Weights are e3nn-style (``N(0, 1)``,
    scaled by ``1 / sqrt(fan_in)``).

    Shapes: ``x [N, D, c]`` -> scalars ``[N, num_scalars]`` and vectors ``[N, 3, num_vectors]``
    (``None`` when none are asked for), in Cartesian ``x, y, z`` order.

    Examples
    --------
    >>> Readout(o3.Irreps("8x0e + 8x1o"), num_scalars=1, num_vectors=0, hidden=4)
    Readout(8x0e+8x1o -> 1x0e via MLP 8 -> 4 -> 1 (silu) | 36 weights)
    """

    def __init__(
        self, irreps_in: o3.Irreps, num_scalars: int, num_vectors: int, hidden: int = 0, gate: str | None = "silu"
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.channels = uniform_channels(self.irreps_in, "the readout's input irreps")
        rows = {ir: start // self.channels for (_, ir), start in zip(self.irreps_in, (s.start for s in self.irreps_in.slices()), strict=True)}
        if o3.Irrep("0e") not in rows:
            raise ValueError(f"a readout needs scalar (0e) features, got {self.irreps_in}")
        self._scalar_row = rows[o3.Irrep("0e")]
        self.num_scalars = int(num_scalars)
        self.num_vectors = int(num_vectors)
        self.hidden = int(hidden)
        self.gate_name = gate
        c = self.channels
        if self.hidden:
            self.scalar_in = nn.Parameter(torch.randn(c, self.hidden))
            self.scalar_out = nn.Parameter(torch.randn(self.hidden, self.num_scalars))
            self.act = normalize2mom(activation(gate)) if gate else nn.Identity()
        else:
            self.scalar_in = nn.Parameter(torch.randn(c, self.num_scalars))
            self.register_parameter("scalar_out", None)
            self.act = nn.Identity()
        self._vector_row = -1
        self.vector_weight = None
        if self.num_vectors:
            if o3.Irrep("1o") not in rows:
                raise ValueError(f"vector outputs need 1o features, got {self.irreps_in}")
            self._vector_row = rows[o3.Irrep("1o")]
            self.vector_weight = nn.Parameter(torch.randn(c, self.num_vectors))

    def reset_parameters(self) -> None:
        redraw_normal(self.parameters())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        scalars = x[:, self._scalar_row] @ (self.scalar_in / math.sqrt(self.channels))
        if self.scalar_out is not None:
            scalars = self.act(scalars) @ (self.scalar_out / math.sqrt(self.hidden))
        vectors = None
        if self.vector_weight is not None:
            row = self._vector_row
            vectors = x[:, row : row + 3] @ (self.vector_weight / math.sqrt(self.channels))
        return scalars, vectors

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        outs = f"{self.num_scalars}x0e" + (f"+{self.num_vectors}x1o" if self.num_vectors else "")
        how = f"MLP {self.channels} -> {self.hidden} -> {self.num_scalars} ({self.gate_name})" if self.hidden else "linear"
        return f"{self.irreps_in} -> {outs} via {how} | {weights} weights"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
