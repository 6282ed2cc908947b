"""The trainer section as Lightning users write it: every Trainer argument, callbacks and loggers
by name or as objects, strategies and precisions in the documents' forms, and the checkpoint and
early-stopping configs building their callbacks for a Trainer of the user's own."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ase
import lightning as L
import pandas as pd
import pytest
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.profilers import SimpleProfiler
from lightning.pytorch.strategies import DDPStrategy

from physicsml_like import ConfigError, EGNNModel
from physicsml_like.config import CheckpointConfig, EarlyStoppingConfig, TrainerConfig
from physicsml_like.training.trainer import build_trainer

from .helpers import tiny_egnn


class CountingCallback(L.Callback):
    """A user's callback, named in a config as ``tests.training.test_lightning_trainer:CountingCallback``."""

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.epochs = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs += 1


def _trainer(tmp_path: Path, **trainer: object) -> L.Trainer:
    model = EGNNModel(tiny_egnn(tmp_path, trainer={"default_root_dir": str(tmp_path), **trainer}))
    return build_trainer(model.config, tmp_path / "run", has_validation=False)


def test_callbacks_in_the_three_forms_run_beside_the_packages_own(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    listed = TrainerConfig(callbacks=[{"name": "LearningRateMonitor", "config": {"logging_interval": "step"}}])
    keyed = TrainerConfig(callbacks={"LearningRateMonitor": {"logging_interval": "step"}})
    molflux = TrainerConfig(callbacks={"lr": {"name": "LearningRateMonitor", "config": {"logging_interval": "step"}}})
    assert listed.callbacks == keyed.callbacks == molflux.callbacks
    assert listed.callbacks[0].create().logging_interval == "step"

    mine = CountingCallback()
    user_class = f"{__name__}:CountingCallback"
    model = EGNNModel(tiny_egnn(tmp_path, epochs=2, early_stopping={"patience": 5}, trainer={
        "max_epochs": 2, "default_root_dir": str(tmp_path), "enable_progress_bar": False,
        "callbacks": {"Timer": {"duration": "00:01:00:00"}, user_class: {"every": 2}}}))
    model.train(ethanol[:16], callbacks=[mine])
    callbacks = model.trainer.callbacks
    assert any(isinstance(c, Timer) for c in callbacks)
    from_config = next(c for c in callbacks if isinstance(c, CountingCallback) and c is not mine)
    assert from_config.every == 2 and from_config.epochs == 2
    assert mine in callbacks and mine.epochs == 2
    # the package's own are kept
    assert any(isinstance(c, ModelCheckpoint) for c in callbacks) and any(isinstance(c, EarlyStopping) for c in callbacks)
    assert (model.run_dir / "checkpoints" / "last.ckpt").exists()
    with pytest.raises(TypeError, match="callbacks: expected lightning.Callback"):
        model.train(ethanol[:16], callbacks=["LearningRateMonitor"])


def test_callback_names_are_checked_with_suggestions() -> None:
    with pytest.raises(ConfigError, match=r"trainer.callbacks\[0\].*unknown callback 'LearningRateMonitr'.*did you mean 'LearningRateMonitor'"):
        EGNNModel(trainer={"callbacks": [{"name": "LearningRateMonitr"}]})
    with pytest.raises(ConfigError, match="LearningRateMonitor has no argument 'logging_intervall'; did you mean 'logging_interval'"):
        EGNNModel(trainer={"callbacks": {"LearningRateMonitor": {"logging_intervall": "step"}}})
    with pytest.raises(ConfigError, match="cannot be imported"):
        EGNNModel(trainer={"callbacks": ["no_such_package.module:Callback"]})


def test_every_trainer_argument_is_accepted_and_a_typo_is_not(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, profiler="simple", min_steps=3, overfit_batches=0.0, barebones=False,
                       num_sanity_val_steps=1, deterministic=True, limit_train_batches=0.5)
    assert isinstance(trainer.profiler, SimpleProfiler)
    assert trainer.fit_loop.min_steps == 3 and trainer.num_sanity_val_steps == 1 and trainer.limit_train_batches == 0.5
    profiled = _trainer(tmp_path, profiler={"name": "SimpleProfiler", "config": {"extended": False}})
    assert isinstance(profiled.profiler, SimpleProfiler) and not profiled.profiler.extended
    with pytest.raises(ConfigError, match=r"trainer.profilr: unknown field \(not a lightning.Trainer argument\); did you mean 'profiler'"):
        EGNNModel(trainer={"profilr": "simple"})
    with pytest.raises(ConfigError, match="trainer.min_step: unknown field.*did you mean 'min_steps'"):
        EGNNModel(trainer={"min_step": 3})
    with pytest.raises(ConfigError, match="trainer.plugins: set by the package"):
        EGNNModel(trainer={"plugins": ["bitsandbytes"]})
    with pytest.raises(ConfigError, match="trainer.barebones: a config holds plain data"):
        EGNNModel(trainer={"barebones": object()})


def test_values_in_physicsml_and_mattertune_forms(tmp_path: Path) -> None:
    assert TrainerConfig(precision=32).precision == "32-true"
    assert TrainerConfig(precision=16).precision == "16-mixed"
    assert EGNNModel(trainer={"precision": 64}, model_dtype="float64").config.trainer.precision == "64-true"
    assert TrainerConfig(gradient_clip_algorithm=None).gradient_clip_algorithm is None
    strategy = _trainer(tmp_path, accelerator="cpu", devices=1, strategy={"name": "ddp", "find_unused_parameters": True}).strategy
    assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs == {"find_unused_parameters": True}
    by_class = TrainerConfig(strategy={"name": "DDPStrategy", "config": {"find_unused_parameters": True}})
    assert by_class.strategy == {"name": "DDPStrategy", "config": {"find_unused_parameters": True}}
    with pytest.raises(ConfigError, match="DDPStrategy has no argument 'find_unused_parameter'; did you mean 'find_unused_parameters'"):
        TrainerConfig(strategy={"name": "ddp", "find_unused_parameter": True})
    with pytest.raises(ConfigError, match="unknown strategy 'dddp'.*did you mean 'ddp'"):
        TrainerConfig(strategy={"name": "dddp"})
    # a molflux config dump lists these; they cannot apply here and say so
    with pytest.warns(UserWarning, match="trainer.inference_mode=True is ignored"):
        TrainerConfig(inference_mode=True)


@pytest.mark.parametrize("precision", ["bf16-true", "16-true"])
def test_half_precision_weights_are_refused_by_the_config(precision: str) -> None:
    # refused, not made to work: see config.training._precision for why
    with pytest.raises(ConfigError, match=rf"trainer.precision: '{precision}' trains the weights themselves in half precision"):
        EGNNModel(trainer={"precision": precision})
    assert TrainerConfig(precision="bf16-mixed").precision == "bf16-mixed"


def test_enable_checkpointing_agrees_with_the_checkpoint_section(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    assert _trainer(tmp_path).checkpoint_callback is not None
    assert _trainer(tmp_path, enable_checkpointing=False).checkpoint_callback is None
    with pytest.raises(ConfigError, match="trainer.enable_checkpointing is true but checkpoint.enabled is false"):
        EGNNModel(trainer={"enable_checkpointing": True}, checkpoint={"enabled": False})
    model = EGNNModel(tiny_egnn(tmp_path, epochs=1, checkpoint={"filename": "mine-{epoch}"}))
    model.train(ethanol[:16])
    assert [p.name for p in (model.run_dir / "checkpoints").glob("mine-*.ckpt")] == ["mine-0.ckpt"]


def test_checkpoint_and_early_stopping_configs_build_callbacks_for_a_trainer_of_ones_own(tmp_path: Path) -> None:
    checkpoint = CheckpointConfig(save_top_k=2, filename="b-{epoch}", monitor="val/forces_mae").create_callback(dirpath=tmp_path)
    assert isinstance(checkpoint, ModelCheckpoint)
    assert (checkpoint.dirpath, checkpoint.filename, checkpoint.monitor, checkpoint.save_top_k) == (str(tmp_path), "b-{epoch}", "val/forces_mae", 2)
    stopping = EarlyStoppingConfig(patience=3, min_delta=0.01).create_callback()
    assert isinstance(stopping, EarlyStopping) and stopping.patience == 3 and stopping.monitor == "val/loss"
    trainer = L.Trainer(callbacks=[checkpoint, stopping], logger=False, enable_progress_bar=False)
    assert trainer.checkpoint_callback is checkpoint and trainer.early_stopping_callback is stopping


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="the tensorboard extra is not installed")
def test_loggers_by_name_and_as_objects(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    mine = CSVLogger(save_dir=str(tmp_path / "mine"), name="", version="")
    model = EGNNModel(tiny_egnn(tmp_path, epochs=1, loggers=["csv", {"name": "tensorboard", "config": {"name": "tb"}}]))
    model.train(ethanol[:16], loggers=[mine])
    loggers = model.trainer.loggers
    assert len(loggers) == 3 and isinstance(loggers[0], CSVLogger) and isinstance(loggers[1], TensorBoardLogger)
    assert loggers[2] is mine  # the user's own, after the config's
    assert (model.run_dir / "metrics.csv").exists() and (tmp_path / "mine" / "metrics.csv").exists()
    assert list((model.run_dir / "tb").glob("events.out.tfevents.*")), "tensorboard wrote its event file"
    assert any(isinstance(c, LearningRateMonitor) for c in model.trainer.callbacks)
    silent = EGNNModel(tiny_egnn(tmp_path, epochs=1, trainer={"max_epochs": 1, "logger": False, "default_root_dir": str(tmp_path)}))
    assert build_trainer(silent.config, tmp_path / "quiet", has_validation=False).loggers == []
    with pytest.raises(ConfigError, match="unknown logger 'TensorBordLogger'.*did you mean 'TensorBoardLogger'"):
        EGNNModel(loggers=["TensorBordLogger"])


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_a_missing_logger_package_names_its_extra(tmp_path: Path) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, loggers=[{"type": "wandb", "offline": True}]))
    assert model.config.loggers[0].config == {"offline": True}  # MatterTune's form
    with pytest.raises(ConfigError, match=r"loggers: 'wandb' needs the package 'wandb': pip install 'physicsml_like\[wandb\]'"):
        build_trainer(model.config, tmp_path / "run", has_validation=False)


def test_step_values_are_logged_on_the_steps_the_loggers_write(tmp_path: Path, ethanol: list[ase.Atoms], monkeypatch: pytest.MonkeyPatch) -> None:
    """Step values are logged only where a logger writes them, and the loggers get exactly what
    logging them on every step gave: the same steps, the same values."""
    from physicsml_like.training.module import AtomisticLightningModule

    calls: list[str] = []
    log = AtomisticLightningModule.log

    def counted(self: AtomisticLightningModule, name: str, *args: object, **kwargs: object) -> None:
        calls.append(name)
        log(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AtomisticLightningModule, "log", counted)

    def run(folder: str) -> tuple[pd.DataFrame, int]:
        calls.clear()
        model = EGNNModel(tiny_egnn(tmp_path / folder, seed=0,
                                   trainer={"max_epochs": 2, "default_root_dir": str(tmp_path / folder),
                                            "enable_progress_bar": False, "log_every_n_steps": 3}))
        model.train(ethanol[:40])  # 5 steps an epoch, 10 in all
        metrics = pd.read_csv(model.run_dir / "metrics.csv")
        columns = ["step", "train/loss_step", "train/grad_norm_step"]
        return metrics[columns].dropna().reset_index(drop=True), calls.count("train/loss_step")

    gated, gated_calls = run("gated")
    monkeypatch.setattr(AtomisticLightningModule, "log_step",
                        lambda self, name, value, batch_size: self.log(name, value, on_step=True, on_epoch=False, batch_size=batch_size))
    every, every_calls = run("every")
    assert every_calls == 10 and gated_calls == 3  # steps 3, 6 and 9
    assert list(gated["step"]) == list(every["step"]) == [2, 5, 8]
    pd.testing.assert_frame_equal(gated, every)
    assert (gated["train/loss_step"] > 0).all() and (gated["train/grad_norm_step"] > 0).all()
