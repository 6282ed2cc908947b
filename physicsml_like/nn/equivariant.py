"""Equivariant building blocks on e3nn irreps, laid out for fast per-edge work on CPU.

e3nn stores a feature ``32x0e + 32x1o`` as ``[..., 32 + 96]``: each irrep block is
multiplicity-major. When every irrep carries the same number of channels ``U`` (as in NequIP and
Allegro), a *channel-major* layout ``[..., U, D]`` (``D`` = sum of ``2l + 1``) turns a whole
channel-wise tensor product into a few batched matrix products instead of one small einsum per
path, which is what makes the per-edge work of both families cheap. :func:`to_channels` converts
e3nn's layout to it; :class:`CouplingPaths` holds the
Clebsch-Gordan coefficients of a channel-wise product, normalised as e3nn's ``TensorProduct``
(``irrep_normalization="component"``, ``path_normalization="element"``, one output slot per path)
so that the result equals e3nn's ``"uvu"`` / ``"uuu"`` products (checked in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from e3nn import o3
from e3nn.math import normalize2mom
from torch import nn

from .mlp import activation

__all__ = [
    "ChannelMixing",
    "CouplingPath",
    "CouplingPaths",
    "ScalarMLP",
    "natural_order",
    "redraw_normal",
    "spherical_harmonics_irreps",
    "to_channels",
    "uniform_channels",
]


def spherical_harmonics_irreps(lmax: int, parity: bool) -> o3.Irreps:
    """``1x0e + 1x1o + 1x2e ...`` (O(3), ``parity``) or ``1x0e + 1x1e + 1x2e ...`` (SO(3) only)."""
    return o3.Irreps.spherical_harmonics(lmax, p=-1 if parity else 1)


def natural_order(ir: o3.Irrep) -> tuple[int, int]:
    """Sort key putting the parity of a vector's spherical harmonics first: 0e, 0o, 1o, 1e, 2e, 2o."""
    return ir.l, 0 if ir.p == (-1) ** ir.l else 1


def redraw_normal(weights: Iterable[torch.Tensor]) -> None:
    """Draw ``weights`` again from ``N(0, 1)``, the start of every weight under e3nn's convention
    (the ``1 / sqrt(fan_in)`` is applied in the forward pass)."""
    with torch.no_grad():
        for weight in weights:
            weight.normal_()


def uniform_channels(irreps: o3.Irreps, what: str) -> int:
    """The multiplicity shared by every irrep of ``irreps``; a ``ValueError`` naming ``what`` otherwise."""
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1:
        raise ValueError(f"{what} must give every irrep the same number of channels, got {irreps}")
    return muls.pop()


def to_channels(x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
    """e3nn layout ``[..., irreps.dim]`` -> channel-major ``[..., U, D]`` (all multiplicities ``U``)."""
    channels = irreps[0].mul
    blocks = [x[..., s].reshape(*x.shape[:-1], channels, ir.dim) for s, (_, ir) in zip(irreps.slices(), irreps, strict=True)]
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-1)


@dataclass(frozen=True)
class CouplingPath:
    """One path ``in1[i1] x in2[i2] -> ir_out`` of a tensor product."""

    i1: int
    i2: int
    ir_out: o3.Irrep


class CouplingPaths:
    """The paths of a channel-wise product of two multiplicity-free irreps lists and their
    Clebsch-Gordan tensor.

    Paths are every ``ir1 x ir2 -> ir_out`` with ``ir_out`` in ``targets``, sorted by output irrep
    (:func:`natural_order`) so that paths with the same output are contiguous. Outputs are laid
    out path after path: ``K = sum(2 l_out + 1)`` columns.

    Examples
    --------
    >>> paths = CouplingPaths(o3.Irreps("0e + 1o"), o3.Irreps("0e + 1o"), [o3.Irrep("0e")])
    >>> [(p.i1, p.i2, str(p.ir_out)) for p in paths.paths]
    [(0, 0, '0e'), (1, 1, '0e')]
    >>> paths.coupling().shape
    torch.Size([4, 4, 2])
    """

    def __init__(self, irreps1: o3.Irreps, irreps2: o3.Irreps, targets: Iterable[o3.Irrep]) -> None:
        self.irreps1 = o3.Irreps([(1, ir) for _, ir in irreps1])
        self.irreps2 = o3.Irreps([(1, ir) for _, ir in irreps2])
        wanted = set(targets)
        found = [
            CouplingPath(i1, i2, ir_out)
            for i1, (_, ir1) in enumerate(self.irreps1)
            for i2, (_, ir2) in enumerate(self.irreps2)
            for ir_out in ir1 * ir2
            if ir_out in wanted
        ]
        self.paths: list[CouplingPath] = sorted(found, key=lambda p: natural_order(p.ir_out))

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        """Output columns ``K`` (sum of ``2 l_out + 1`` over paths)."""
        return sum(p.ir_out.dim for p in self.paths)

    def output_irreps(self) -> list[o3.Irrep]:
        """Distinct output irreps in path order."""
        return list(dict.fromkeys(p.ir_out for p in self.paths))

    def groups(self) -> list[tuple[o3.Irrep, int, int]]:
        """``(ir_out, first column, number of paths)`` for each run of paths with the same output."""
        out: list[tuple[o3.Irrep, int, int]] = []
        column = 0
        for ir in self.output_irreps():
            count = sum(1 for p in self.paths if p.ir_out == ir)
            out.append((ir, column, count))
            column += count * ir.dim
        return out

    def used_inputs1(self) -> list[int]:
        """Indices of ``irreps1`` entries that some path reads."""
        return sorted({p.i1 for p in self.paths})

    def coupling(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``[D1, D2, K]`` coefficients: ``sqrt(2 l_out + 1)`` times e3nn's Wigner 3j symbol."""
        dtype = dtype or torch.get_default_dtype()
        start1 = _starts(self.irreps1)
        start2 = _starts(self.irreps2)
        out = torch.zeros(self.irreps1.dim, self.irreps2.dim, self.dim, dtype=torch.float64)
        column = 0
        for p in self.paths:
            ir1, ir2 = self.irreps1[p.i1].ir, self.irreps2[p.i2].ir
            block = o3.wigner_3j(ir1.l, ir2.l, p.ir_out.l, dtype=torch.float64) * math.sqrt(p.ir_out.dim)
            out[start1[p.i1] : start1[p.i1] + ir1.dim, start2[p.i2] : start2[p.i2] + ir2.dim, column : column + p.ir_out.dim] = block
            column += p.ir_out.dim
        return out.to(dtype)


def _starts(irreps: o3.Irreps) -> list[int]:
    starts, offset = [], 0
    for mul, ir in irreps:
        starts.append(offset)
        offset += mul * ir.dim
    return starts


class ChannelMixing(nn.Module):
    """Equivariant linear map on channel-major features: for each irrep, every
    ``(channel, path)`` carrying it is mixed into ``channels_out`` channels.

    Input: one ``[..., channels_in, paths * (2l + 1)]`` tensor per irrep of ``irreps``
    (``(irrep, paths)`` pairs, columns path after path); output ``[..., channels_out, D_out]``
    with ``D_out`` the sum of ``2l + 1``. Weights are normalised by the fan-in (e3nn's ``Linear``
    convention).
    """

    def __init__(self, channels_in: int, irreps: Sequence[tuple[o3.Irrep, int]], channels_out: int) -> None:
        super().__init__()
        self.channels_in = channels_in
        self.channels_out = channels_out
        self.irreps = [(o3.Irrep(ir), int(count)) for ir, count in irreps]
        for k, (_, count) in enumerate(self.irreps):
            self.register_parameter(f"weight_{k}", nn.Parameter(torch.randn(count * channels_in, channels_out)))

    def reset_parameters(self) -> None:
        redraw_normal(self.parameters())

    def forward(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        """``blocks``: ``[E, channels_in, paths * (2l + 1)]`` per irrep -> ``[E, channels_out, D_out]``."""
        outs = []
        for k, ((ir, count), block) in enumerate(zip(self.irreps, blocks, strict=True)):
            lead = block.shape[0]
            weight = getattr(self, f"weight_{k}")
            # [E, U, P, m] -> [E, m, P * U] @ [P * U, V] -> [E, V, m]
            block = block.reshape(lead, self.channels_in, count, ir.dim).permute(0, 3, 2, 1).reshape(lead, ir.dim, count * self.channels_in)
            outs.append(torch.matmul(block, weight / math.sqrt(count * self.channels_in)).transpose(1, 2))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)

    def extra_repr(self) -> str:
        irreps_in = " + ".join(f"{count * self.channels_in}x{ir}" for ir, count in self.irreps)
        irreps_out = " + ".join(f"{self.channels_out}x{ir}" for ir, _ in self.irreps)
        weights = sum(w.numel() for w in self.parameters())
        return f"{irreps_in} -> {irreps_out} | {weights} weights"


class ScalarMLP(nn.Module):
    """A bias-free MLP with e3nn's variance-preserving initialisation: weights ``N(0, 1)``
    divided by the square root of the fan-in, activation rescaled to unit second moment on a unit
    Gaussian. Signals keep their scale through deep stacks, and with no biases a zero input gives
    a zero output (Allegro relies on it: latents vanish with the envelope).

    ``sizes = [in, hidden..., out]``; the activation follows every layer but the last, and the
    last too with ``output_activation``.

    Examples
    --------
    >>> ScalarMLP([8, 16, 4], "SiLU")
    ScalarMLP(8 -> 16 -> 4, act=SiLU, output_activation=False | 192 weights)
    """

    def __init__(self, sizes: Sequence[int], activation_name: str = "SiLU", output_activation: bool = False) -> None:
        super().__init__()
        if len(sizes) < 1:
            raise ValueError("a ScalarMLP needs at least its input size")
        self.sizes = [int(n) for n in sizes]
        self.activation_name = activation_name
        self.output_activation = output_activation
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(a, b)) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))
        self.activation = normalize2mom(activation(activation_name))

    def reset_parameters(self) -> None:
        redraw_normal(self.weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., sizes[0]]`` -> ``[..., sizes[-1]]``."""
        last = len(self.weights) - 1
        for k, weight in enumerate(self.weights):
            x = x @ (weight / math.sqrt(weight.shape[0]))
            if k < last or self.output_activation:
                x = self.activation(x)
        return x

    def __repr__(self) -> str:
        weights = sum(w.numel() for w in self.weights)
        sizes = " -> ".join(map(str, self.sizes))
        return f"ScalarMLP({sizes}, act={self.activation_name}, output_activation={self.output_activation} | {weights} weights)"
