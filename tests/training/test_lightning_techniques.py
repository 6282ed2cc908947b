"""A user's own training technique by name, the checks the EMA+ConFIG combination makes when it
is built, and a resumed run that is longer than the one it resumes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import ase
import lightning as L
import pytest
import torch

from physicsml_like import ConfigError, EGNNModel
from physicsml_like.config.training import EMAConfig
from physicsml_like.training import (
    AtomisticLightningModule,
    EMAConFIGLightningModule,
    EMALightningModule,
    register_technique,
)
from physicsml_like.training.techniques import TECHNIQUES

from .helpers import tiny_egnn


@register_technique("rank_zero_counting")
class RankZeroCounting(AtomisticLightningModule):
    """A technique with rank-0-only logic: counts optimiser steps on rank 0."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rank_zero_steps = 0

    def after_optimizer_step(self) -> None:
        if self.trainer.is_global_zero:
            self.rank_zero_steps += 1
        super().after_optimizer_step()


@register_technique("ema_twice")
class EMATwice(EMALightningModule):
    """A broken combination: updates the average a second time in every step."""

    def after_optimizer_step(self) -> None:
        super().after_optimizer_step()
        self.update_ema()


def test_a_registered_technique_is_chosen_by_name(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=1, training_module="rank_zero_counting")).train(ethanol[:16])
    assert type(model.module) is RankZeroCounting
    assert model.module.rank_zero_steps == model.trainer.global_step == 2
    with pytest.raises(ConfigError, match="unknown training technique 'rank_zero_countin'.*did you mean 'rank_zero_counting'"):
        EGNNModel(training_module="rank_zero_countin")
    with pytest.raises(ConfigError, match=r"ema is set but training_module='rank_zero_counting' \(RankZeroCounting\) does not use it"):
        EGNNModel(tiny_egnn(tmp_path, training_module="rank_zero_counting", ema={"decay": 0.9})).train(ethanol[:8])
    with pytest.raises(ValueError, match="'ema' is a built-in training technique"):
        register_technique("ema")(RankZeroCounting)
    with pytest.raises(TypeError, match="not a subclass of AtomisticLightningModule"):
        register_technique("not_a_module")(L.LightningModule)
    assert "not_a_module" not in TECHNIQUES


def test_a_second_ema_update_in_one_step_is_an_error(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=1, training_module="ema_twice"))
    with pytest.raises(RuntimeError, match=r"the EMA was updated twice in optimiser step \d"):
        model.train(ethanol[:16])


def _parts(tmp_path: Path, ethanol: list[ase.Atoms]) -> tuple[Any, ...]:
    module = EGNNModel(tiny_egnn(tmp_path, training_module="ema_config")).initialise(ethanol[:8]).module
    return module.network, module.config, module.statistics, module.element_mapping, module.spec


def test_ema_config_checks_its_own_combination_when_built(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    parts = _parts(tmp_path, ethanol)
    EMAConFIGLightningModule(*parts, ema=EMAConfig())  # the shipped combination passes its checks

    class OwnStep(EMAConFIGLightningModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return super().training_step(batch, batch_idx)

    with pytest.raises(TypeError, match="training_step must be ConFIG's"):
        OwnStep(*parts, ema=EMAConfig())

    class Automatic(EMAConFIGLightningModule):
        @property
        def automatic_optimization(self) -> bool:
            return True

        @automatic_optimization.setter
        def automatic_optimization(self, value: bool) -> None:
            pass

    with pytest.raises(TypeError, match="the EMA would be updated twice per optimiser step"):
        Automatic(*parts, ema=EMAConfig())


class LearningRates(L.Callback):
    """The learning rate of every optimiser step."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


class StopAfter(L.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


@pytest.mark.parametrize("scheduler", [{}, {"warmup_steps": 1}], ids=["cosine", "cosine_after_warmup"])
def test_resuming_into_a_longer_run_resizes_the_schedule(tmp_path: Path, ethanol: list[ase.Atoms], scheduler: dict[str, Any]) -> None:
    # a 2-epoch run (2 steps an epoch), stopped after its first epoch, resumed into 4 epochs
    fields = tiny_egnn(tmp_path, epochs=2, scheduler=scheduler)
    short, longer = LearningRates(), LearningRates()
    first = EGNNModel(fields).train(ethanol[:16], callbacks=[short, StopAfter(1)])
    checkpoint = first.run_dir / "checkpoints" / "last.ckpt"
    resumed = EGNNModel(fields).train(ethanol[:16], ckpt_path=checkpoint, trainer_config={"max_epochs": 4}, callbacks=[longer])
    assert first.trainer.global_step == 2 and resumed.trainer.global_step == 8
    rates = short.rates + longer.rates
    start = 1 if scheduler else 0  # the warm-up rises on purpose
    peak, after_peak = rates[start], rates[start:]
    assert all(b <= a * (1 + 1e-9) for a, b in itertools.pairwise(after_peak)), f"rose again: {rates}"
    assert rates[4] > 0.2 * peak, f"stretched to the new length, not ended at the old one: {rates}"
    assert rates[-1] < 0.1 * peak, f"and decays over the longer run: {rates}"


def test_resuming_after_the_schedule_ended_warns_and_stays_low(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    fields = tiny_egnn(tmp_path, epochs=2)
    first = EGNNModel(fields).train(ethanol[:16])
    longer = LearningRates()
    with pytest.warns(UserWarning, match="after the saved CosineAnnealingLR schedule had ended"):
        EGNNModel(fields).train(ethanol[:16], ckpt_path=first.run_dir / "checkpoints" / "last.ckpt",
                                trainer_config={"max_epochs": 3}, callbacks=[longer])
    assert longer.rates and max(longer.rates) < 1e-6
