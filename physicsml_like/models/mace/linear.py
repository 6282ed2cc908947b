"""Equivariant linear layers on MACE's node-feature layout.

Features are stored "channels last": a tensor ``[N, D, c]`` holds, for each of ``c`` channels,
one copy of every irrep of the layer (``D = sum(2l + 1)``); the irreps ``c x 0e + c x 1o``
give ``[N, 4, c]`` (the scalar, then the vector in e3nn's ``x, y, z`` basis). Mixing channels
within an irrep is then one matrix product on the last axis, with no reshuffling.

Weights follow e3nn's convention (``o3.Linear`` and ``o3.FullyConnectedTensorProduct`` without
biases): drawn from ``N(0, 1)`` and scaled by ``1 / sqrt(fan_in)`` in the forward pass, so the
training dynamics match the reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from e3nn import o3
from torch import nn

from ...nn.equivariant import redraw_normal, uniform_channels

__all__ = ["ElementLinear", "IrrepsLinear"]


def _blocks_by_irrep(irreps: o3.Irreps) -> dict[o3.Irrep, tuple[int, int]]:
    """Irrep -> (first row in ``D``, number of consecutive copies); equal irreps must be adjacent."""
    found: dict[o3.Irrep, tuple[int, int]] = {}
    row = 0
    previous = None
    for _, ir in irreps:
        if ir in found:
            if ir != previous:
                raise ValueError(f"equal irreps must be adjacent (sorted), got {irreps}")
            start, count = found[ir]
            found[ir] = (start, count + 1)
        else:
            found[ir] = (row, 1)
        row += ir.dim
        previous = ir
    return found


class _PerIrrepLinear(nn.Module):
    """What both MACE linear maps share: one weight matrix per output irrep that the input holds
    (``elements x copies x c_in`` rows), zeros for an output irrep the input lacks, weights drawn
    from N(0, 1) and divided by the square root of their fan-in in the forward pass."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, *, elements: int = 1, max_copies: int | None = None) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.channels_in = uniform_channels(self.irreps_in, "the input irreps")
        self.channels_out = uniform_channels(self.irreps_out, "the output irreps")
        blocks = _blocks_by_irrep(self.irreps_in)
        self.weights = nn.ParameterList()
        # per output irrep: (dim, first input row, input copies, index into self.weights or -1)
        self._plan: list[tuple[int, int, int, int]] = []
        for _, ir in self.irreps_out:
            if ir not in blocks:
                self._plan.append((ir.dim, 0, 0, -1))
                continue
            start, copies = blocks[ir]
            if max_copies is not None and copies > max_copies:
                raise ValueError(f"{type(self).__name__} needs each input irrep at most {max_copies} time(s), got {self.irreps_in}")
            self._plan.append((ir.dim, start, copies, len(self.weights)))
            self.weights.append(nn.Parameter(torch.randn(elements * copies * self.channels_in, self.channels_out)))

    def _map(self, x: torch.Tensor, rows: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
        """Apply the weights; ``rows(block, copies)`` turns an input block ``[N, copies * dim, c_in]``
        into the ``[N, dim, rows]`` matrix its weight multiplies."""
        n = x.shape[0]
        outs = []
        for dim, start, copies, k in self._plan:
            if k < 0:
                outs.append(x.new_zeros(n, dim, self.channels_out))
                continue
            weight = self.weights[k]
            outs.append(rows(x[:, start : start + copies * dim], copies) @ (weight / math.sqrt(weight.shape[0])))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def reset_parameters(self) -> None:
        redraw_normal(self.weights)

    @property
    def num_weights(self) -> int:
        return sum(w.numel() for w in self.weights)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out} | {self.num_weights} weights"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class IrrepsLinear(_PerIrrepLinear):
    """Equivariant linear map ``[N, D_in, c_in] -> [N, D_out, c_out]`` (e3nn's ``o3.Linear``).

    Each output irrep mixes the channels of every input block of the same irrep (several blocks
    when the input lists that irrep more than once, e.g. one per tensor-product path); an
    output irrep absent from the input is zero.

    Examples
    --------
    >>> IrrepsLinear(o3.Irreps("4x0e + 4x1o"), o3.Irreps("8x0e + 8x1o"))
    IrrepsLinear(4x0e+4x1o -> 8x0e+8x1o | 64 weights)
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps) -> None:
        super().__init__(irreps_in, irreps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, D_in, c_in]`` -> ``[N, D_out, c_out]``."""
        n = x.shape[0]

        def rows(block: torch.Tensor, copies: int) -> torch.Tensor:
            if copies == 1:
                return block
            dim = block.shape[1] // copies  # [N, copies, dim, c] -> [N, dim, copies * c]
            return block.reshape(n, copies, dim, self.channels_in).transpose(1, 2).reshape(n, dim, -1)

        return self._map(x, rows)


class ElementLinear(_PerIrrepLinear):
    """Equivariant linear map with separate weights for each element of the atom.

    This is the reference's "skip" tensor product of the features with the one-hot element
    (``o3.FullyConnectedTensorProduct(irreps, num_elements x 0e, irreps_out)``), written as a
    product with the one-hot: ``[N, D_in, c_in]`` and ``[N, E]`` -> ``[N, D_out, c_out]``.

    Examples
    --------
    >>> ElementLinear(o3.Irreps("4x0e + 4x1o"), o3.Irreps("4x0e"), num_elements=3)
    ElementLinear(4x0e+4x1o -> 4x0e | 3 elements | 48 weights)
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, num_elements: int) -> None:
        super().__init__(irreps_in, irreps_out, elements=int(num_elements), max_copies=1)
        self.num_elements = int(num_elements)

    def forward(self, x: torch.Tensor, element_onehot: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``[N, D_in, c_in]``, ``element_onehot``: ``[N, E]`` (``None`` with one element)."""
        if self.num_elements > 1 and element_onehot is None:
            raise ValueError("ElementLinear with several elements needs element_onehot")
        n = x.shape[0]

        def rows(block: torch.Tensor, copies: int) -> torch.Tensor:
            if element_onehot is None or self.num_elements == 1:
                return block
            # [N, dim, E, c]: the features in the slot of the atom's element, zero elsewhere
            return (block.unsqueeze(2) * element_onehot[:, None, :, None]).reshape(n, block.shape[1], -1)

        return self._map(x, rows)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out} | {self.num_elements} elements | {self.num_weights} weights"
