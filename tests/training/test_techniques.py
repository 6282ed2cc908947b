"""Training techniques: EMA, ConFIG and both together behave as intended, also after resume."""

from __future__ import annotations

from pathlib import Path

import ase
import pandas as pd
import pytest
import torch

from physicsml_like import ConfigError, EGNNModel
from physicsml_like.training import (
    ConFIGLightningModule,
    EMAConFIGLightningModule,
    EMALightningModule,
    conflict_free_direction,
)

from .helpers import tiny_egnn


def test_conflict_free_direction_agrees_with_every_term() -> None:
    g1 = torch.tensor([1.0, 0.0, 0.0])
    g2 = torch.tensor([-0.9, 1.0, 0.0]) * 50.0  # conflicting, and 50x larger
    combined = conflict_free_direction(torch.stack([g1, g2]))
    cos1 = torch.dot(combined, g1) / (combined.norm() * g1.norm())
    cos2 = torch.dot(combined, g2) / (combined.norm() * g2.norm())
    assert cos1 > 0 and cos2 > 0, "the update decreases both terms"
    assert torch.isclose(cos1, cos2, atol=1e-5), "with the same cosine to each"
    # a plain sum would work against the small term
    assert torch.dot(g1 + g2, g1) < 0
    # aligned gradients: the update is their sum
    torch.testing.assert_close(conflict_free_direction(torch.stack([g1, 3 * g1])), 4 * g1)
    # a term with no gradient is left out
    torch.testing.assert_close(conflict_free_direction(torch.stack([g1, torch.zeros(3)])), g1)


def _metrics(model: EGNNModel) -> pd.DataFrame:
    return pd.read_csv(model.run_dir / "metrics.csv")


def test_config_trains_with_conflict_free_updates(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=4, training_module="config", trainer={
        "max_epochs": 4, "default_root_dir": str(tmp_path), "enable_progress_bar": False, "gradient_clip_val": 10.0}))
    model.train(ethanol[:48], ethanol[100:116])
    module = model.module
    assert isinstance(module, ConFIGLightningModule) and not module.automatic_optimization
    state = module.conflict_free
    assert state.steps == model.trainer.global_step == 4 * 6
    assert state.term_names == ["energy", "forces"]
    assert all(c > 0 for c in state.cosines), "the last update decreased every loss term"
    losses = _metrics(model).dropna(subset=["val/forces_mae"])["val/forces_mae"]
    assert losses.iloc[-1] < losses.iloc[0]
    training = _metrics(model).dropna(subset=["train/loss"])["train/loss"]
    assert len(training) == 4 and (training > 0).all() and training.iloc[-1] < training.iloc[0]


def test_ema_and_config_together_do_both(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=2, training_module="ema_config", ema={"decay": 0.9}))
    model.train(ethanol[:32], ethanol[100:108])
    module = model.module
    assert isinstance(module, EMAConFIGLightningModule)
    assert isinstance(module, EMALightningModule) and isinstance(module, ConFIGLightningModule)
    # the diamond resolves EMA before ConFIG before the shared module
    mro = type(module).__mro__
    assert mro.index(EMALightningModule) < mro.index(ConFIGLightningModule)
    steps = model.trainer.global_step
    assert steps == 8
    assert module.ema_state.updates == steps, "EMA updated exactly once per optimiser step"
    assert module.conflict_free.steps == steps, "every step combined by ConFIG"
    assert int(module.ema_network.n_averaged) == steps
    assert module.inference_network() is module.ema_network.module
    raw, averaged = module.network.state_dict(), module.ema_network.module.state_dict()
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw)


def test_technique_config_errors() -> None:
    with pytest.raises(ConfigError, match="accumulate_grad_batches must be 1"):
        EGNNModel(training_module="config", trainer={"accumulate_grad_batches": 2})
    with pytest.raises(ConfigError, match="ema is set but training_module='config'"):
        EGNNModel(training_module="config", ema={"decay": 0.99})
    assert EGNNModel(ema={"decay": 0.99}).config.resolved_training_module == "ema"
    assert EGNNModel(training_module="ema_config").config.resolved_training_module == "ema_config"
