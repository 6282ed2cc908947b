"""Build a ``lightning.Trainer`` from a model config: run folder, callbacks, loggers."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
)
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..config.base import ConfigError
from ..config.model import ModelConfig

__all__ = ["build_trainer", "find_last_checkpoint", "new_run_dir"]

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
    ``ckpt_path`` would try to resume from."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options are not supported for local checkpoints")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()


def _launched_rank() -> bool:
    """True in the worker processes Lightning's DDP launcher starts (they re-run the script)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def new_run_dir(root: str | Path, name: str) -> Path:
    """``<root>/<name>/version_<n>`` with the next unused ``n``.

    Under DDP the launched ranks join the folder rank 0 made before it launched them.
    """
    base = Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
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


def _monitor(requested: str | None, has_validation: bool, field: str) -> str:
    if requested is None:
        return "val/loss" if has_validation else "train/loss"
    if requested.startswith("val/") and not has_validation:
        raise ConfigError(f"{field}={requested!r} needs validation data, and none was given")
    return requested


def _loggers(config: ModelConfig, run_dir: Path) -> list[Logger]:
    out: list[Logger] = []
    for logger in config.loggers:
        if logger.name == "csv":
            out.append(CSVLogger(save_dir=str(run_dir), name="", version="", **logger.config))
        elif logger.name == "tensorboard":
            try:
                from lightning.pytorch.loggers import TensorBoardLogger

                out.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", **logger.config))
            except ModuleNotFoundError as err:
                raise ConfigError("loggers: tensorboard needs `pip install tensorboard`") from err
        elif logger.name == "wandb":
            try:
                import wandb  # noqa: F401
                from lightning.pytorch.loggers import WandbLogger
            except ModuleNotFoundError as err:
                raise ConfigError("loggers: wandb needs `pip install wandb`") from err
            out.append(WandbLogger(save_dir=str(run_dir), **logger.config))
    return out


def build_trainer(
    config: ModelConfig,
    run_dir: Path,
    *,
    has_validation: bool,
    callbacks: list[Callback] | None = None,
    for_fitting: bool = True,
) -> L.Trainer:
    """A Trainer for a config. For fitting it checkpoints into ``run_dir/checkpoints`` and logs
    into ``run_dir``; otherwise (predict/test) it writes nothing."""
    quiet_lightning()
    t = config.trainer
    kwargs: dict[str, Any] = t.model_dump(exclude={"default_root_dir"})
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k in {"max_epochs"}}
    # forces are derivatives: evaluation must be able to build a graph
    kwargs["inference_mode"] = False
    # our datamodule cuts batches per rank itself (EpochBatchSampler)
    kwargs["use_distributed_sampler"] = False
    if config.resolved_training_module in ("config", "ema_config"):
        # manual optimisation: the module clips with these settings itself
        kwargs.pop("gradient_clip_val", None)
        kwargs.pop("gradient_clip_algorithm", None)
    all_callbacks: list[Callback] = list(callbacks or [])
    if not for_fitting:
        return L.Trainer(**kwargs, default_root_dir=str(run_dir), logger=False, enable_checkpointing=False, callbacks=all_callbacks)
    loggers = _loggers(config, run_dir)
    ck = config.checkpoint
    if ck.enabled:
        monitor = _monitor(ck.monitor, has_validation, "checkpoint.monitor")
        all_callbacks.append(
            ModelCheckpoint(
                dirpath=ck.dirpath or str(run_dir / "checkpoints"),
                filename="best-{epoch}-{step}",
                monitor=monitor,
                mode=ck.mode,
                save_top_k=ck.save_top_k,
                save_last=ck.save_last,
                every_n_epochs=ck.every_n_epochs if ck.every_n_train_steps is None else None,
                every_n_train_steps=ck.every_n_train_steps,
                auto_insert_metric_name=False,
            )
        )
    if config.early_stopping is not None:
        es = config.early_stopping
        all_callbacks.append(
            EarlyStopping(
                monitor=_monitor(es.monitor, has_validation, "early_stopping.monitor"),
                patience=es.patience,
                mode=es.mode,
                min_delta=es.min_delta,
            )
        )
    if loggers and config.scheduler is not None:
        all_callbacks.append(LearningRateMonitor(logging_interval=config.scheduler.interval))
    return L.Trainer(
        **kwargs,
        default_root_dir=str(run_dir),
        logger=loggers or False,
        enable_checkpointing=ck.enabled,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
    )
