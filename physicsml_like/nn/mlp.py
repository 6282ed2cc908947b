"""Multi-layer perceptrons and the activation lookup shared by the families."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "activation"]

_ACTIVATIONS = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "celu": nn.CELU,
    "elu": nn.ELU,
    "leakyrelu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def activation(name: str | None) -> nn.Module:
    """An activation module by (case-insensitive) name, e.g. ``"SiLU"``; ``None`` is identity."""
    if name is None:
        return nn.Identity()
    key = name.lower().replace("_", "")
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[key]()


class MLP(nn.Sequential):
    """Linear layers with an activation (and optional dropout) between them.

    ``sizes = [in, hidden..., out]``; no activation after the last layer unless
    ``output_activation`` is given.

    Examples
    --------
    >>> MLP([16, 32, 1])
    MLP(16 -> 32 -> 1 | act=SiLU | 577 weights)
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation_name: str | None = "SiLU",
        dropout: float | None = None,
        output_activation: str | None = None,
        bias: bool = True,
    ) -> None:
        if len(sizes) < 2:
            raise ValueError("an MLP needs at least input and output sizes")
        layers: list[nn.Module] = []
        for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(n_in, n_out, bias=bias))
            if k < len(sizes) - 2:
                layers.append(activation(activation_name))
                if dropout:
                    layers.append(nn.Dropout(dropout))
        if output_activation is not None:
            layers.append(activation(output_activation))
        super().__init__(*layers)
        self.sizes = list(sizes)
        self.activation_name = activation_name

    def __repr__(self) -> str:
        return f"MLP({' -> '.join(map(str, self.sizes))} | act={self.activation_name} | {self.num_weights} weights)"

    @property
    def num_weights(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def reset_parameters(self) -> None:
        for layer in self:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)
