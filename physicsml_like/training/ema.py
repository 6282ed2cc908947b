"""Exponential moving average of the weights, as a training technique on the shared module.

The average is a ``torch.optim.swa_utils.AveragedModel`` (a well-kept implementation) whose
update rule adds the usual warm-up of the decay, ``min(decay, (1 + n) / (10 + n))``. It lives
inside the module, so its state is part of every checkpoint and a resumed run continues the
average exactly. Validation, test, prediction and saving use the averaged weights; the
optimiser keeps training the raw ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..config.training import EMAConfig
from .module import AtomisticLightningModule

__all__ = ["EMALightningModule", "EMAState"]


def _ema_update(decay: float, warmup: bool) -> Any:
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        effective = min(decay, (1.0 + n) / (10.0 + n)) if warmup else decay
        torch._foreach_lerp_(averaged, current, 1.0 - effective)

    return update


@dataclass
class EMAState:
    """What the EMA technique adds to a module (its own names, so techniques compose)."""

    config: EMAConfig
    updates: int = 0
    last_step: int | None = None  # the trainer's optimiser step of the last update


class EMALightningModule(AtomisticLightningModule):
    """The shared module with an exponential moving average of the network's weights."""

    def __init__(self, *args: Any, ema: EMAConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ema_state = EMAState(ema)
        self.ema_network = AveragedModel(
            self.network, multi_avg_fn=_ema_update(ema.decay, ema.warmup), use_buffers=True
        )
        for parameter in self.ema_network.parameters():
            parameter.requires_grad_(False)

    def inference_network(self) -> nn.Module:
        return self.ema_network.module

    def update_ema(self) -> None:
        """Fold the current weights into the average (once per optimiser step: a second update
        within one step, as two techniques both updating would make, is an error)."""
        step = self._optimizer_step_count()
        if step is not None and step == self.ema_state.last_step:
            raise RuntimeError(
                f"{type(self).__name__}: the EMA was updated twice in optimiser step {step}; a combination of "
                "techniques must call after_optimizer_step once per step"
            )
        self.ema_network.update_parameters(self.network)
        self.ema_state.updates += 1
        self.ema_state.last_step = step

    def _optimizer_step_count(self) -> int | None:
        """The trainer's count of optimiser steps while fitting, else ``None``."""
        trainer = self._trainer
        return int(trainer.global_step) if trainer is not None and trainer.training else None

    def after_optimizer_step(self) -> None:
        self.update_ema()
        super().after_optimizer_step()
