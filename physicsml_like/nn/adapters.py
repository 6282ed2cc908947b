"""Parameter-efficient fine-tuning layers inserted into a trained network.

- SSF, scale and shift (Lian et al. 2022, arXiv:2210.08823): after a linear layer,
  ``y = gamma * x + beta``, starting at the identity.
- Bottleneck adapters (Houlsby et al. 2019, arXiv:1902.00751): ``y = x + up(act(down(x)))`` with
  ``up`` starting at zero, so the network starts exactly as it was trained.

Adapters attach with forward hooks and live in ``network.adapters``: the trained layers keep their
parameter names (so pretrained weights still load by name), and the adapters' own parameters are
saved and loaded with the network. For equivariant layers the adapters keep equivariance: SSF
scales every channel of an irrep by one number and shifts only scalar (``0e``) channels; the
bottleneck goes through an equivariant low-rank linear map without a nonlinearity.

Which layers are linear, and how their outputs are laid out, is read from the layer, not from the
name of its weights: ``torch.nn.Linear`` (``[..., features]``), e3nn's ``o3.Linear`` (e3nn's flat
layout ``[..., irreps.dim]``, NequIP), and equivariant linears that declare ``irreps_out`` with a
uniform ``channels_out`` (the channels-last layout ``[N, D, channels]`` of MACE's
``IrrepsLinear`` and ``ElementLinear``, whose weights are a list named ``weights``).
"""

from __future__ import annotations

import fnmatch
from typing import Literal

import torch
from torch import nn

__all__ = [
    "BottleneckAdapter",
    "ChannelsLastBottleneckAdapter",
    "ChannelsLastScaleShift",
    "IrrepsBottleneckAdapter",
    "IrrepsScaleShift",
    "ScaleShift",
    "insert_adapters",
]

AdapterKind = Literal["ssf", "bottleneck", "lora"]


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


class _ChannelsLast(nn.Module):
    """Rows of each irrep in a channels-last tensor ``[N, D, c]`` (every irrep has ``c`` channels)."""

    def __init__(self, irreps: object, channels: int) -> None:
        super().__init__()
        from e3nn import o3

        self.irreps = o3.Irreps(irreps)
        self.channels = int(channels)
        if any(mul != self.channels for mul, _ in self.irreps):
            raise ValueError(f"channels-last adapters need {self.channels} channels in every irrep, got {self.irreps}")
        starts = [0]
        for _, ir in self.irreps:
            starts.append(starts[-1] + ir.dim)
        self.blocks = [(start, ir.dim) for start, (_, ir) in zip(starts, self.irreps, strict=False)]

    def extra_repr(self) -> str:
        return f"{self.irreps} channels last | {sum(p.numel() for p in self.parameters())} weights"


class ChannelsLastScaleShift(_ChannelsLast):
    """SSF on ``[N, D, c]`` features: one scale per (irrep, channel), shifts on ``0e`` rows only."""

    irrep_of_row: torch.Tensor
    scalar_rows: torch.Tensor

    def __init__(self, irreps: object, channels: int) -> None:
        super().__init__(irreps, channels)
        rows = [k for k, (_, dim) in enumerate(self.blocks) for _ in range(dim)]
        scalars = [start for (start, _), (_, ir) in zip(self.blocks, self.irreps, strict=True) if ir.l == 0 and ir.p == 1]
        self.register_buffer("irrep_of_row", torch.tensor(rows, dtype=torch.long))
        self.register_buffer("scalar_rows", torch.tensor(scalars, dtype=torch.long))
        self.scale = nn.Parameter(torch.ones(len(self.blocks), self.channels))
        self.shift = nn.Parameter(torch.zeros(len(scalars), self.channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, D, c]`` -> ``[N, D, c]``."""
        y = x * self.scale[self.irrep_of_row]
        return y.index_add(1, self.scalar_rows, self.shift.expand(x.shape[0], -1, -1))


class ChannelsLastBottleneckAdapter(_ChannelsLast):
    """``y = x + (x @ down) @ up`` within each irrep of ``[N, D, c]`` features (mixing channels,
    never components, so equivariant); ``up`` starts at zero."""

    def __init__(self, irreps: object, channels: int, bottleneck: int) -> None:
        super().__init__(irreps, channels)
        width = max(1, min(bottleneck, self.channels))
        self.down = nn.ParameterList([nn.Parameter(torch.randn(self.channels, width) / self.channels**0.5) for _ in self.blocks])
        self.up = nn.ParameterList([nn.Parameter(torch.zeros(width, self.channels)) for _ in self.blocks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, D, c]`` -> ``[N, D, c]``."""
        parts = [x[:, s : s + d] + x[:, s : s + d] @ down @ up for (s, d), down, up in zip(self.blocks, self.down, self.up, strict=True)]
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return f"{self.irreps} channels last -> {self.down[0].shape[1]} channels -> {self.irreps} | {weights} weights"


def _width(features: int, bottleneck: int, ratio: int | None) -> int:
    """The bottleneck width of a layer of ``features`` (per irrep): ``features // ratio`` when a
    ratio is given (physicsml's ``ratio_adapter_down``), else ``bottleneck``; at least 1."""
    return max(1, features // ratio) if ratio is not None else bottleneck


def _adapter_for(layer: nn.Module, kind: AdapterKind, bottleneck: int, ratio: int | None = None) -> nn.Module | None:
    irreps_out = getattr(layer, "irreps_out", None)
    channels = getattr(layer, "channels_out", None)
    if irreps_out is not None and isinstance(channels, int):  # equivariant linear, channels last (MACE)
        if kind == "ssf":
            return ChannelsLastScaleShift(irreps_out, channels)
        return ChannelsLastBottleneckAdapter(irreps_out, channels, _width(channels, bottleneck, ratio))
    from e3nn import o3

    if isinstance(layer, o3.Linear):  # e3nn's flat layout
        if kind == "ssf":
            return IrrepsScaleShift(irreps_out)
        width = _width(min(mul for mul, _ in layer.irreps_out), bottleneck, ratio)
        return IrrepsBottleneckAdapter(irreps_out, width)
    if isinstance(layer, nn.Linear):
        if kind == "ssf":
            return ScaleShift(layer.out_features)
        return BottleneckAdapter(layer.out_features, _width(layer.out_features, bottleneck, ratio))
    return None


def insert_adapters(
    network: nn.Module, kind: AdapterKind, targets: list[str] | None = None, bottleneck: int = 8,
    bottleneck_ratio: int | None = None, *, lora_rank: int = 4, lora_alpha: float = 4.0,
) -> list[str]:
    """Attach an adapter after every linear layer whose name matches one of ``targets``
    (fnmatch patterns; default: every linear layer). Returns the names of the adapted layers.

    Bottleneck adapters are ``bottleneck`` wide, or the layer's width (per irrep) divided by
    ``bottleneck_ratio``. ``"lora"`` instead adds low-rank updates of rank ``lora_rank``, scaled
    by ``lora_alpha / lora_rank``, to the layers' weight matrices (see :mod:`.lora`). Adapters
    are created in the dtype and on the device of the network's parameters.
    """
    if kind == "lora":
        from .lora import insert_lora

        return insert_lora(network, targets, lora_rank, lora_alpha)
    reference = next(network.parameters())
    chosen = []
    for name, layer in list(network.named_modules()):
        if not name or name.startswith("adapters"):
            continue
        if targets is not None and not any(fnmatch.fnmatch(name, pattern) for pattern in targets):
            continue
        adapter = _adapter_for(layer, kind, bottleneck, bottleneck_ratio)
        if adapter is None:
            continue
        chosen.append((name, layer, adapter.to(device=reference.device, dtype=reference.dtype)))
    if not chosen:
        which = "has no" if targets is None else f"has no layer matching adapter targets {targets} that is a"
        raise ValueError(f"{type(network).__name__} {which} linear layer an adapter can follow (torch.nn.Linear, "
                         "e3nn's o3.Linear, or an equivariant linear declaring irreps_out and channels_out)")
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
