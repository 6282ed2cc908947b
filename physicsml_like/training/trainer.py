"""Build a ``lightning.Trainer`` from a model config: run folder, callbacks, loggers."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .._files import remove_dead_leftovers, temporary_name
from ..config.base import ConfigError
from ..config.model import ModelConfig
from ..config.training import LOGGER_EXTRAS, LoggerConfig, lightning_class
from .saved import read_checkpoint

__all__ = [
    "AtomicCheckpointIO", "NewestLastCheckpoint", "build_trainer", "check_something_trained", "checkpoint_callback",
    "checkpoint_step", "find_last_checkpoint", "new_run_dir",
]

# Lightning's advice that does not apply here: our datamodule shards across ranks itself, and
# workers are a choice left to the user on a 2-core machine
_QUIET = (
    r".*does not have many workers.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*Experiment logs directory .* exists and is not empty.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*Total length of `list` across ranks is zero.*",  # no validation data: by design
)


class _DropNoise(logging.Filter):
    """Drops Lightning's start-up chatter (device availability, tips); keeps everything else."""

    _NOISE = ("GPU available", "TPU available", "HPU available", "💡 Tip", "Loading `train_dataloader` to estimate")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(noise) for noise in self._NOISE)


_NOISE_FILTER = _DropNoise()


def quiet_lightning() -> None:
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        target = logging.getLogger(name)
        if _NOISE_FILTER not in target.filters:
            target.addFilter(_NOISE_FILTER)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the same folder, flushed and renamed into place:
    a run killed while saving leaves the previous checkpoint intact, never a truncated file that
    ``ckpt_path`` would try to resume from (and the next save removes the dead run's temporary).

    Reading always refuses pickled code (``weights_only=True``), whatever the caller asks and
    whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says: our checkpoints hold only tensors and
    plain data, so a checkpoint that needs more is not one of ours and must not run.
    """

    def __init__(self) -> None:
        super().__init__()
        self._swept: set[Path] = set()

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options are not supported for local checkpoints")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent not in self._swept:
            remove_dead_leftovers(target.parent, hidden=True)
            self._swept.add(target.parent)
        tmp = target.with_name(temporary_name(f".{target.name}"))
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(Path(path), map_location=map_location)


class NewestLastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is rewritten at every checkpoint opportunity (each
    epoch's end, or each validation), not only when a best checkpoint is saved too: once the
    monitored metric stops improving, Lightning's own ``last.ckpt`` would keep an old epoch, and
    ``ckpt_path="last"`` would retrain epochs already done."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def _save_last_if_behind(self, trainer: L.Trainer) -> None:
        # skipped during sanity checks, outside fitting, and when this step was saved already
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class _HistoryWriter(ExperimentWriter):
    """Lightning's CSV writer, starting from the rows of the run being resumed (Lightning's own
    deletes ``metrics.csv`` when the folder is reused, losing the epochs before the restart)."""

    def __init__(self, log_dir: str, history: list[dict[str, str]]) -> None:
        self._history = history
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        super()._check_log_dir_exists()
        if not self._history:
            return
        keys = sorted(set().union(*self._history))
        with open(self.metrics_file_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self._history)
        self.metrics_keys = keys


class ResumableCSVLogger(CSVLogger):
    """``metrics.csv`` that keeps the rows logged before ``resume_step`` when a run is resumed."""

    def __init__(self, *args: Any, resume_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._history = _history_before(Path(self.log_dir) / "metrics.csv", resume_step)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HistoryWriter(self.log_dir, self._history)
        return cast(ExperimentWriter, self._experiment)


def _history_before(path: Path, step: int | None) -> list[dict[str, str]]:
    """Rows of an existing ``metrics.csv`` logged before ``step`` (later rows are re-run)."""
    if step is None or not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row for row in rows if row.get("step", "").isdigit() and int(row["step"]) < step]


def checkpoint_step(checkpoint: dict[str, Any]) -> int:
    """The logger's step a checkpoint was taken at (what its metrics rows are numbered by)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
    except (KeyError, TypeError):
        return int(checkpoint.get("global_step", 0))


def _launched_rank() -> bool:
    """True in the worker processes Lightning's DDP launcher starts (they re-run the script)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def new_run_dir(root: str | Path, name: str) -> Path:
    """``<root>/<name>/version_<n>`` with the next unused ``n``.

    Under DDP the launched ranks join the folder rank 0 made before it launched them.
    """
    base = Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
    for checkpoints in base.glob("version_*/checkpoints"):  # runs killed while checkpointing
        remove_dead_leftovers(checkpoints, hidden=True)
    taken = [int(m.group(1)) for p in base.iterdir() if (m := re.fullmatch(r"version_(\d+)", p.name))]
    if taken and _launched_rank():
        return base / f"version_{max(taken)}"
    run = base / f"version_{max(taken, default=-1) + 1}"
    run.mkdir()
    return run


def find_last_checkpoint(root: str | Path, name: str) -> Path:
    """The newest ``last.ckpt`` under ``<root>/<name>/version_*/checkpoints`` (``ckpt_path="last"``)."""
    candidates = sorted(Path(root, name).glob("version_*/checkpoints/last*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(f"ckpt_path='last': no last.ckpt under {Path(root, name)}")
    return candidates[-1]


def check_something_trained(config: ModelConfig, trainer: L.Trainer, checkpoint: dict[str, Any], resume: Path | None) -> None:
    """Warn, or raise with ``trainer.if_nothing_trained="error"``, when a fit took no optimiser
    step: the model would be saved and used as if trained."""
    start = int(checkpoint.get("global_step", 0))
    if trainer.global_step > start:
        return
    t = config.trainer
    limits = f"trainer.max_epochs={t.max_epochs}, trainer.max_steps={t.max_steps}"
    if resume is not None:
        reason = f"{resume} is already at epoch {checkpoint.get('epoch')} (step {start}) and {limits}"
    else:
        reason = f"{limits}, {trainer.num_training_batches} training batches per epoch"
    message = f"nothing was trained: 0 optimiser steps ({reason}); the weights are unchanged"
    if t.if_nothing_trained == "error":
        raise ConfigError(message)
    warnings.warn(message, UserWarning, stacklevel=3)


def _monitor(requested: str | None, has_validation: bool, field: str) -> str:
    if requested is None:
        return "val/loss" if has_validation else "train/loss"
    if requested.startswith("val/") and not has_validation:
        raise ConfigError(f"{field}={requested!r} needs validation data, and none was given")
    return requested


def _logger(logger: LoggerConfig, run_dir: Path, resume_step: int | None) -> Logger:
    """A configured logger writing into the run folder (the CSV one keeping a resumed run's
    earlier rows); a missing optional package is named with the extra that installs it."""
    from lightning.pytorch import loggers

    needs = LOGGER_EXTRAS.get(logger.class_name)
    if needs is not None and not any(importlib.util.find_spec(module) for module in needs[0]):
        raise ConfigError(
            f"loggers: {logger.name!r} needs the package {needs[0][0]!r}: "
            f"pip install 'physicsml_like[{needs[1]}]' (or pip install {needs[0][0]})"
        )
    cls = lightning_class(logger.class_name, "lightning.pytorch.loggers", "Logger", "logger")
    arguments = dict(logger.config)
    if "save_dir" in inspect.signature(cls).parameters:
        arguments.setdefault("save_dir", str(run_dir))
    if cls is loggers.CSVLogger:
        arguments = {"name": "", "version": "", **arguments}  # metrics.csv in the run folder itself
        cls, arguments["resume_step"] = ResumableCSVLogger, resume_step  # keeps a resumed run's rows
    elif cls is loggers.TensorBoardLogger:
        arguments = {"name": "tensorboard", "version": "", **arguments}
    try:
        return cls(**arguments)
    except TypeError as err:
        raise ConfigError(f"loggers: {logger.name!r} with config {logger.config}: {err}") from None


def _loggers(config: ModelConfig, run_dir: Path, extra: Sequence[Logger] = (), resume_step: int | None = None) -> list[Logger]:
    """The config's loggers and the user's logger objects."""
    out = [_logger(logger, run_dir, resume_step) for logger in config.loggers] if config.logging else []
    for logger in extra:
        if not isinstance(logger, Logger):
            raise TypeError(f"loggers: expected lightning.pytorch.loggers.Logger objects, got {type(logger).__name__}")
        out.append(logger)
    return out


def checkpoint_callback(config: ModelConfig, run_dir: Path, has_validation: bool) -> ModelCheckpoint:
    """The run's checkpoint callback (the one place it is made): ``checkpoint`` settings, into
    ``run_dir/checkpoints`` unless the section names a folder, with ``last.ckpt`` always the
    newest epoch (:class:`NewestLastCheckpoint`)."""
    monitor = _monitor(config.checkpoint.monitor, has_validation, "checkpoint.monitor")
    return config.checkpoint.create_callback(dirpath=run_dir / "checkpoints", monitor=monitor, callback_class=NewestLastCheckpoint)


def _user_callbacks(config: ModelConfig, extra: Sequence[Callback]) -> list[Callback]:
    out: list[Callback] = []
    for index, entry in enumerate(config.trainer.callbacks):
        try:
            out.append(entry.create())
        except (TypeError, ValueError) as err:
            raise ConfigError(f"trainer.callbacks[{index}] ({entry.name}): {err}") from None
    for callback in extra:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks: expected lightning.Callback objects, got {type(callback).__name__}")
        out.append(callback)
    return out


def build_trainer(
    config: ModelConfig,
    run_dir: Path,
    *,
    has_validation: bool,
    callbacks: Sequence[Callback] | None = None,
    loggers: Sequence[Logger] | None = None,
    for_fitting: bool = True,
    resume_step: int | None = None,
) -> L.Trainer:
    """A Trainer for a config. For fitting it checkpoints into ``run_dir/checkpoints`` and logs
    into ``run_dir`` (keeping the log rows before ``resume_step`` of a resumed run); otherwise
    (predict/test) it writes nothing.

    ``callbacks`` and ``loggers`` are Lightning objects added to those of the config (the
    package's checkpoint and early-stopping callbacks are always kept)."""
    quiet_lightning()
    kwargs = config.trainer.trainer_kwargs()
    # forces are derivatives: evaluation must be able to build a graph
    kwargs["inference_mode"] = False
    # our datamodule cuts batches per rank itself (EpochBatchSampler)
    kwargs["use_distributed_sampler"] = False
    if config.resolved_training_module in ("config", "ema_config"):
        # manual optimisation: the module clips with these settings itself
        kwargs.pop("gradient_clip_val", None)
        kwargs.pop("gradient_clip_algorithm", None)
    all_callbacks = _user_callbacks(config, callbacks or ())
    if not for_fitting:
        return L.Trainer(**kwargs, default_root_dir=str(run_dir), logger=False, enable_checkpointing=False, callbacks=all_callbacks)
    run_loggers = _loggers(config, run_dir, loggers or (), resume_step)
    if config.checkpointing:
        all_callbacks.append(checkpoint_callback(config, run_dir, has_validation))
    if config.early_stopping is not None:
        es = config.early_stopping
        all_callbacks.append(es.create_callback(monitor=_monitor(es.monitor, has_validation, "early_stopping.monitor")))
    if run_loggers and config.scheduler is not None and not any(isinstance(c, LearningRateMonitor) for c in all_callbacks):
        all_callbacks.append(LearningRateMonitor(logging_interval=config.scheduler.interval))
    return L.Trainer(
        **kwargs,
        default_root_dir=str(run_dir),
        logger=run_loggers or False,
        enable_checkpointing=config.checkpointing,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
    )
