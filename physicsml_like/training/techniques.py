"""Training techniques by name, and how two of them combine.

A technique is a subclass of the shared module. Rules that keep them composable (see
``docs/techniques.md``):

1. State specific to a technique lives in one attribute with a name of its own, holding a
   dataclass (``ema_state``, ``conflict_free``), so two techniques never overwrite each other.
2. Techniques hook in through cooperative methods that call ``super()``
   (``after_optimizer_step``, ``inference_network``), never by copying a step.
3. A combination is an explicit class whose method resolution order is chosen on purpose and
   checked by a test.

``EMAConFIGLightningModule(EMALightningModule, ConFIGLightningModule)`` resolves to
EMA -> ConFIG -> shared module: ConFIG's manual ``training_step`` combines the gradients and,
after each optimiser step, calls ``after_optimizer_step``, which EMA extends to update the
average once per step; ``inference_network`` comes from EMA.
"""

from __future__ import annotations

from typing import Any

from ..config.model import ModelConfig
from ..config.training import EMAConfig
from .conflict_free import ConFIGLightningModule
from .ema import EMALightningModule
from .module import AtomisticLightningModule

__all__ = ["TECHNIQUES", "EMAConFIGLightningModule", "technique_for"]


class EMAConFIGLightningModule(EMALightningModule, ConFIGLightningModule):
    """Conflict-free gradients and an exponential moving average of the weights, together."""


TECHNIQUES: dict[str, type[AtomisticLightningModule]] = {
    "default": AtomisticLightningModule,
    "ema": EMALightningModule,
    "config": ConFIGLightningModule,
    "ema_config": EMAConFIGLightningModule,
}


def technique_for(config: ModelConfig) -> tuple[type[AtomisticLightningModule], dict[str, Any]]:
    """The module class of a config's ``training_module`` and its extra arguments."""
    name = config.resolved_training_module
    cls = TECHNIQUES[name]
    extra: dict[str, Any] = {}
    if issubclass(cls, EMALightningModule):
        extra["ema"] = config.ema or EMAConfig()
    return cls, extra
