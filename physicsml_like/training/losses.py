"""Loss functions by name (what ``LossConfig.name`` selects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["loss_function"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(name: str, config: dict[str, Any] | None = None) -> LossFn:
    """``loss(prediction, target)``, a mean over all elements."""
    config = dict(config or {})
    if name == "mse":
        return lambda p, t: F.mse_loss(p, t)
    if name == "mae":
        return lambda p, t: F.l1_loss(p, t)
    if name == "huber":
        delta = float(config.pop("delta", 1.0))
        return lambda p, t: F.huber_loss(p, t, delta=delta)
    if name == "smooth_l1":
        beta = float(config.pop("beta", 1.0))
        return lambda p, t: F.smooth_l1_loss(p, t, beta=beta)
    if name == "gaussian_nll":
        raise ValueError("gaussian_nll needs a model with a variance head (uncertainty: mean_var)")
    raise ValueError(f"unknown loss {name!r}")
