"""Training techniques by name, and how two of them combine.

A technique is a subclass of the shared module. Rules that keep them composable (see
``docs/techniques.md``):

1. State specific to a technique lives in one attribute with a name of its own, holding a
   dataclass (``ema_state``, ``conflict_free``), so two techniques never overwrite each other.
2. Techniques hook in through cooperative methods that call ``super()``
   (``after_optimizer_step``, ``inference_network``), never by copying a step.
3. A combination is an explicit class whose method resolution order is chosen on purpose and
   checked when it is built.
4. A technique of a user's own registers by name (:func:`register_technique`) and is chosen with
   ``training_module="<name>"``, like a built-in one.

``EMAConFIGLightningModule(EMALightningModule, ConFIGLightningModule)`` resolves to
EMA -> ConFIG -> shared module: ConFIG's manual ``training_step`` combines the gradients and,
after each optimiser step, calls ``after_optimizer_step``, which EMA extends to update the
average once per step; ``inference_network`` comes from EMA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..config.base import ConfigError
from ..config.model import BUILTIN_TRAINING_MODULES, ModelConfig, register_training_module_name
from ..config.training import EMAConfig
from .conflict_free import ConFIGLightningModule
from .ema import EMALightningModule
from .module import AtomisticLightningModule

__all__ = ["TECHNIQUES", "EMAConFIGLightningModule", "register_technique", "technique_for"]


class EMAConFIGLightningModule(EMALightningModule, ConFIGLightningModule):
    """Conflict-free gradients and an exponential moving average of the weights, together.

    The construction checks what makes the combination correct, so a subclass or a change of
    bases that breaks it fails at once rather than training wrongly: EMA resolves before ConFIG
    before the shared module, optimisation is manual (so Lightning's ``optimizer_step`` hook,
    which also calls ``after_optimizer_step``, never runs), and ``training_step`` is ConFIG's,
    the one place that steps the optimiser and calls ``after_optimizer_step`` once. (EMA itself
    refuses a second update within one optimiser step while training.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mro = type(self).__mro__
        if not mro.index(EMALightningModule) < mro.index(ConFIGLightningModule) < mro.index(AtomisticLightningModule):
            raise TypeError(f"{type(self).__name__}: the bases must resolve EMA -> ConFIG -> shared module, got "
                            f"{[c.__name__ for c in mro]}")
        if self.automatic_optimization:
            raise TypeError(f"{type(self).__name__}: ConFIG needs manual optimisation; with automatic optimisation "
                            "the EMA would be updated twice per optimiser step")
        step_owner = next(c for c in mro if "training_step" in vars(c))
        if not issubclass(ConFIGLightningModule, step_owner) or step_owner is AtomisticLightningModule:
            raise TypeError(f"{type(self).__name__}: training_step must be ConFIG's (it is {step_owner.__name__}'s), "
                            "the one place the optimiser steps and the EMA updates")


TECHNIQUES: dict[str, type[AtomisticLightningModule]] = {
    "default": AtomisticLightningModule,
    "ema": EMALightningModule,
    "config": ConFIGLightningModule,
    "ema_config": EMAConFIGLightningModule,
}

T = TypeVar("T", bound=type[AtomisticLightningModule])


def register_technique(name: str) -> Callable[[T], T]:
    """Class decorator: make a subclass of the shared module the technique ``training_module=name``.

    Examples
    --------
    >>> from physicsml_like.training import AtomisticLightningModule, register_technique
    >>> @register_technique("quiet_on_other_ranks")
    ... class RankZeroLogging(AtomisticLightningModule):
    ...     def after_optimizer_step(self) -> None:
    ...         super().after_optimizer_step()
    >>> TECHNIQUES["quiet_on_other_ranks"] is RankZeroLogging
    True
    """

    def decorate(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, AtomisticLightningModule)):
            raise TypeError(f"register_technique({name!r}): {cls!r} is not a subclass of AtomisticLightningModule")
        existing = TECHNIQUES.get(name)
        if name in BUILTIN_TRAINING_MODULES and existing is not cls:
            raise ValueError(f"{name!r} is a built-in training technique ({existing.__qualname__ if existing else ''})")
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"a training technique named {name!r} is already registered ({existing.__qualname__})")
        TECHNIQUES[name] = cls
        register_training_module_name(name)
        return cls

    return decorate


def technique_for(config: ModelConfig) -> tuple[type[AtomisticLightningModule], dict[str, Any]]:
    """The module class of a config's ``training_module`` and its extra arguments."""
    name = config.resolved_training_module
    cls = TECHNIQUES[name]
    extra: dict[str, Any] = {}
    if issubclass(cls, EMALightningModule):
        extra["ema"] = config.ema or EMAConfig()
    elif config.ema is not None:
        raise ConfigError(f"ema is set but training_module={name!r} ({cls.__name__}) does not use it")
    if issubclass(cls, ConFIGLightningModule) and config.trainer.accumulate_grad_batches > 1:
        raise ConfigError(f"training_module={name!r} combines per-term gradients each step (ConFIG); "
                          "trainer.accumulate_grad_batches must be 1")
    return cls, extra
