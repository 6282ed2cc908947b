"""Low-rank adaptation (LoRA, Hu et al. 2021, arXiv:2106.09685) of a trained network's linear maps.

Every weight matrix ``W`` (``[out, in]``) of an adapted layer gets a trainable update
``(alpha / rank) * B @ A`` with ``A`` ``[rank, in]`` (Kaiming-uniform, as PEFT) and ``B``
``[out, rank]`` starting at zero, so the adapted network starts *exactly* as it was trained; the
layer then runs with ``W + (alpha / rank) B @ A`` while ``W`` stays frozen. ``rank`` is capped at
``min(in, out)`` per matrix (a larger one adds weights and no freedom); the scaling is
``alpha / rank`` with the configured rank, as PEFT, MatterTune and mace-torch define it.

Which matrices a layer has is read from the layer, and for equivariant layers it is one matrix
per irrep (or per tensor-product path) that mixes channels *within* that irrep, so a low-rank
update of each keeps the layer equivariant:

- ``torch.nn.Linear``: ``weight`` ``[out, in]`` (the bias is kept, frozen);
- e3nn's ``o3.Linear`` (NequIP): one ``[mul_in, mul_out]`` block of the flat ``weight`` per
  instruction (path);
- MACE's ``IrrepsLinear`` / ``ElementLinear`` (layers declaring ``irreps_out`` and
  ``channels_out`` with a list of ``weights``): each ``[rows, c_out]`` matrix, one per output
  irrep (rows: elements x copies x ``c_in``);
- Allegro's channel mixing (``weight_k`` ``[paths * c_in, c_out]`` per irrep);
- layers declaring ``lora_layout = "out_in"`` or ``"in_out"``: each of their own 2-D parameters
  (TensorNet's ``TensorLinear``).

Radial MLPs, tensor products and per-element embeddings of other shapes are not adapted.

The updates live in ``network.adapters`` (as the SSF and bottleneck adapters do) and attach
with forward hooks, so the trained layers keep their parameter names: pretrained weights still
load by name, and a saved model keeps its LoRA weights (it is rebuilt from its config). The
hooked layer runs once more with the merged weights, whose output replaces the original.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["LoRA", "LowRankUpdate", "insert_lora", "lora_matrices"]


class LowRankUpdate(nn.Module):
    """``scale * B @ A`` for one ``[n_out, n_in]`` weight matrix, ``B`` zero-initialised.

    Examples
    --------
    >>> LowRankUpdate(16, 8, rank=4, scale=1.0)
    LowRankUpdate(16 -> 8, rank=4, scale=1 | 96 weights)
    """

    def __init__(self, n_in: int, n_out: int, rank: int, scale: float) -> None:
        super().__init__()
        self.rank = max(1, min(int(rank), int(n_in), int(n_out)))
        self.scale = float(scale)
        self.lora_A = nn.Parameter(torch.empty(self.rank, int(n_in)))
        self.lora_B = nn.Parameter(torch.zeros(int(n_out), self.rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # PEFT's choice (nn.Linear's default)

    def delta(self) -> torch.Tensor:
        """The update ``[n_out, n_in]``."""
        return (self.lora_B @ self.lora_A) * self.scale

    def extra_repr(self) -> str:
        weights = self.lora_A.numel() + self.lora_B.numel()
        return f"{self.lora_A.shape[1]} -> {self.lora_B.shape[0]}, rank={self.rank}, scale={self.scale:g} | {weights} weights"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


@dataclass(frozen=True)
class _Matrix:
    """One weight matrix inside a layer's parameter: ``numel`` entries from ``offset`` of the
    flat parameter, read as ``[n_out, n_in]`` (``transposed=False``) or ``[n_in, n_out]``."""

    parameter: str
    n_in: int
    n_out: int
    transposed: bool
    offset: int = 0

    @property
    def numel(self) -> int:
        return self.n_in * self.n_out


def lora_matrices(layer: nn.Module) -> list[_Matrix]:
    """The weight matrices of ``layer`` that LoRA adapts (empty: not a linear map it knows)."""
    from e3nn import o3

    if isinstance(layer, nn.Linear):
        return [_Matrix("weight", layer.in_features, layer.out_features, transposed=False)]
    if isinstance(layer, o3.Linear):
        if not layer.internal_weights or not layer.shared_weights:
            return []
        out, offset = [], 0
        for ins in layer.instructions:
            mul_in, mul_out = ins.path_shape
            out.append(_Matrix("weight", mul_in, mul_out, transposed=True, offset=offset))
            offset += mul_in * mul_out
        return out
    layout = getattr(layer, "lora_layout", None)
    if layout in ("out_in", "in_out"):
        found = []
        for name, p in layer.named_parameters(recurse=False):
            if p.dim() == 2:
                n_in, n_out = (p.shape[1], p.shape[0]) if layout == "out_in" else (p.shape[0], p.shape[1])
                found.append(_Matrix(name, n_in, n_out, transposed=layout == "in_out"))
        return found
    weights = getattr(layer, "weights", None)
    if getattr(layer, "irreps_out", None) is not None and isinstance(getattr(layer, "channels_out", None), int) \
            and isinstance(weights, nn.ParameterList):  # MACE's channels-last linears, x @ W
        return [_Matrix(f"weights.{k}", w.shape[0], w.shape[1], transposed=True) for k, w in enumerate(weights) if w.dim() == 2]
    from .equivariant import ChannelMixing

    if isinstance(layer, ChannelMixing):
        return [_Matrix(name, p.shape[0], p.shape[1], transposed=True) for name, p in layer.named_parameters(recurse=False)]
    return []


class LoRA(nn.Module):
    """The low-rank updates of one layer: one :class:`LowRankUpdate` per weight matrix."""

    def __init__(self, matrices: list[_Matrix], rank: int, alpha: float) -> None:
        super().__init__()
        self.matrices = list(matrices)
        self.updates = nn.ModuleList(LowRankUpdate(m.n_in, m.n_out, rank, alpha / rank) for m in self.matrices)

    def merged(self, layer: nn.Module) -> dict[str, torch.Tensor]:
        """The layer's adapted parameters with their updates added: ``name -> W + delta``."""
        parameters = dict(layer.named_parameters())
        by_parameter: dict[str, list[torch.Tensor]] = {}
        for matrix, update in zip(self.matrices, self.updates, strict=True):
            assert isinstance(update, LowRankUpdate)
            delta = update.delta()
            by_parameter.setdefault(matrix.parameter, []).append((delta.t() if matrix.transposed else delta).reshape(-1))
        out = {}
        for name, parts in by_parameter.items():
            weight = parameters[name]
            out[name] = weight + torch.cat(parts).reshape(weight.shape)
        return out

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        rank = max((int(u.rank) for u in self.updates if isinstance(u, LowRankUpdate)), default=0)
        return f"{len(self.updates)} matrices, rank<={rank} | {weights} weights"


class _LoRAHook:
    """A picklable forward hook: run the layer again with its merged weights (never recursing)."""

    def __init__(self, adapters: nn.ModuleDict, key: str) -> None:
        self.adapters = adapters
        self.key = key
        self.inside = False

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        if self.inside:
            return None
        self.inside = True
        try:
            lora = self.adapters[self.key]
            assert isinstance(lora, LoRA)
            return torch.func.functional_call(module, lora.merged(module), args, kwargs, strict=False)
        finally:
            self.inside = False


def _layers(network: nn.Module, targets: list[str] | None) -> Iterator[tuple[str, nn.Module, list[_Matrix]]]:
    for name, layer in network.named_modules():
        if not name or name == "adapters" or name.startswith("adapters."):
            continue
        if targets is not None and not any(fnmatch.fnmatch(name, pattern) for pattern in targets):
            continue
        matrices = lora_matrices(layer)
        if matrices:
            yield name, layer, matrices


def insert_lora(network: nn.Module, targets: list[str] | None = None, rank: int = 4, alpha: float = 4.0) -> list[str]:
    """Give every linear map of ``network`` whose name matches ``targets`` (fnmatch patterns;
    default every one) a low-rank update of ``rank`` scaled by ``alpha / rank``. Returns the
    names of the adapted layers. The updates are made in the dtype and on the device of the
    network's parameters, in ``network.adapters``."""
    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {rank}")
    reference = next(network.parameters())
    chosen = list(_layers(network, targets))
    if not chosen:
        which = "has no" if targets is None else f"has no layer matching adapter targets {targets} that is a"
        raise ValueError(f"{type(network).__name__} {which} linear map LoRA can adapt (torch.nn.Linear, e3nn's o3.Linear, "
                         "an equivariant channel-mixing linear)")
    existing = getattr(network, "adapters", None)
    adapters = existing if isinstance(existing, nn.ModuleDict) else nn.ModuleDict()
    for name, layer, matrices in chosen:
        key = name.replace(".", "__")
        adapters[key] = LoRA(matrices, rank, alpha).to(device=reference.device, dtype=reference.dtype)
        layer.register_forward_hook(_LoRAHook(adapters, key), with_kwargs=True)
    if "adapters" not in network._modules:
        network.add_module("adapters", adapters)
    return [name for name, _, _ in chosen]
