"""Parameter-efficient fine-tuning layers inserted into a trained network.

- SSF, scale and shift (Lian et al. 2022, arXiv:2210.08823): after a linear layer,
  ``y = gamma * x + beta``, starting at the identity.
- Bottleneck adapters (Houlsby et al. 2019, arXiv:1902.00751): ``y = x + up(act(down(x)))`` with
  ``up`` starting at zero, so the network starts exactly as it was trained.

Adapters attach with forward hooks and live in ``network.adapters``: the trained layers keep their
parameter names (so pretrained weights still load by name), and the adapters' own parameters are
saved and loaded with the network. For equivariant (e3nn) layers the adapters keep equivariance:
SSF scales every channel of an irrep by one number and shifts only scalar (``0e``) channels; the
bottleneck goes through an equivariant low-rank linear map without a nonlinearity.
"""

from __future__ import annotations

import fnmatch
from typing import Literal

import torch
from torch import nn

__all__ = ["BottleneckAdapter", "IrrepsBottleneckAdapter", "IrrepsScaleShift", "ScaleShift", "insert_adapters"]

AdapterKind = Literal["ssf", "bottleneck"]


class ScaleShift(nn.Module):
    """``y = gamma * x + beta`` per feature, initialised to the identity."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(features))
        self.shift = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"features={self.scale.numel()} | {2 * self.scale.numel()} weights"


class BottleneckAdapter(nn.Module):
    """``y = x + up(silu(down(x)))`` with ``up`` zero-initialised."""

    def __init__(self, features: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(features, bottleneck)
        self.up = nn.Linear(bottleneck, features)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"{self.down.in_features} -> {self.down.out_features} -> {self.up.out_features} | {weights} weights"


class IrrepsScaleShift(nn.Module):
    """SSF on an irreps tensor: one scale per channel (all 2l+1 components), shifts on 0e only."""

    expand: torch.Tensor
    scalar_index: torch.Tensor

    def __init__(self, irreps: object) -> None:
        super().__init__()
        from e3nn import o3

        self.irreps = o3.Irreps(irreps)
        channels = sum(mul for mul, _ in self.irreps)
        expand = []
        scalar_index = []
        channel = 0
        offset = 0
        for mul, ir in self.irreps:
            for _ in range(mul):
                expand += [channel] * ir.dim
                if ir.l == 0 and ir.p == 1:
                    scalar_index.append(offset)
                channel += 1
                offset += ir.dim
        self.register_buffer("expand", torch.tensor(expand, dtype=torch.long))
        self.register_buffer("scalar_index", torch.tensor(scalar_index, dtype=torch.long))
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(len(scalar_index)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale[self.expand]
        return y.index_add(-1, self.scalar_index, self.shift.expand(*x.shape[:-1], -1))

    def extra_repr(self) -> str:
        return f"{self.irreps} | {self.scale.numel() + self.shift.numel()} weights"


class IrrepsBottleneckAdapter(nn.Module):
    """``y = x + up(down(x))`` through ``bottleneck`` channels of each irrep; ``up`` starts at zero."""

    def __init__(self, irreps: object, bottleneck: int) -> None:
        super().__init__()
        from e3nn import o3

        self.irreps = o3.Irreps(irreps).simplify()
        middle = o3.Irreps([(min(bottleneck, mul), ir) for mul, ir in self.irreps])
        self.down = o3.Linear(self.irreps, middle)
        self.up = o3.Linear(middle, self.irreps)
        with torch.no_grad():
            self.up.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.down(x))

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"{self.irreps} -> {self.down.irreps_out} -> {self.irreps} | {weights} weights"


def _adapter_for(layer: nn.Module, kind: AdapterKind, bottleneck: int) -> nn.Module | None:
    irreps_out = getattr(layer, "irreps_out", None)
    if irreps_out is not None and hasattr(layer, "weight"):  # an e3nn linear layer
        return IrrepsScaleShift(irreps_out) if kind == "ssf" else IrrepsBottleneckAdapter(irreps_out, bottleneck)
    if isinstance(layer, nn.Linear):
        return ScaleShift(layer.out_features) if kind == "ssf" else BottleneckAdapter(layer.out_features, bottleneck)
    return None


def insert_adapters(
    network: nn.Module, kind: AdapterKind, targets: list[str] | None = None, bottleneck: int = 8
) -> list[str]:
    """Attach an adapter after every linear layer whose name matches one of ``targets``
    (fnmatch patterns; default: every linear layer). Returns the names of the adapted layers.

    Adapters are created in the dtype and on the device of the network's parameters.
    """
    reference = next(network.parameters())
    chosen = []
    for name, layer in list(network.named_modules()):
        if not name or name.startswith("adapters"):
            continue
        if targets is not None and not any(fnmatch.fnmatch(name, pattern) for pattern in targets):
            continue
        adapter = _adapter_for(layer, kind, bottleneck)
        if adapter is None:
            continue
        chosen.append((name, layer, adapter.to(device=reference.device, dtype=reference.dtype)))
    if not chosen:
        raise ValueError(f"no linear layer of {type(network).__name__} matches adapter targets {targets}")
    adapters = nn.ModuleDict()
    for name, layer, adapter in chosen:
        key = name.replace(".", "__")
        adapters[key] = adapter
        layer.register_forward_hook(_AdapterHook(adapters, key))
    network.add_module("adapters", adapters)
    return [name for name, _, _ in chosen]


class _AdapterHook:
    """A picklable forward hook applying one adapter to a layer's output."""

    def __init__(self, adapters: nn.ModuleDict, key: str) -> None:
        self.adapters = adapters
        self.key = key

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        return self.adapters[self.key](output)
