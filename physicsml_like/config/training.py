"""Config sections of a training run: trainer, checkpoints, early stopping, loggers,
optimiser, scheduler, losses and EMA. Every model family reuses them as they are."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from .base import StrictConfig

__all__ = [
    "CheckpointConfig",
    "EMAConfig",
    "EarlyStoppingConfig",
    "LoggerConfig",
    "LossConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "TrainerConfig",
]


def _metric_name(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"metric names look like 'val/forces_mae' or 'train/loss', got {value!r}")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
"""A logged metric, ``<split>/<name>`` (e.g. ``val/forces_mae``)."""


class TrainerConfig(StrictConfig):
    """Arguments of ``lightning.Trainer`` (see its documentation for each)."""

    accelerator: str = "auto"
    """``"cpu"``, ``"gpu"``/``"cuda"``, ``"mps"`` or ``"auto"``."""
    devices: int | str | list[int] = "auto"
    """Devices per node: a count, ``"auto"``, or a list of indices."""
    strategy: str = "auto"
    """``"auto"``, ``"ddp"``, ``"ddp_spawn"``, ``"fsdp"``, ... (Lightning does the distribution)."""
    num_nodes: int = Field(1, ge=1)
    """Machines for multi-node DDP."""
    precision: Literal["64-true", "64", "32-true", "32", "16-mixed", "bf16-mixed", "bf16-true"] = "32-true"
    """Lightning precision. The model's own dtype is ``model_dtype``; ``"64-true"`` needs it float64."""
    max_epochs: int | None = 100
    """Epochs to train (``None`` with ``max_steps``/``max_time`` set)."""
    min_epochs: int | None = None
    """Train at least this many epochs, even if early stopping triggers."""
    max_steps: int = -1
    """Optimiser steps to train (-1: no limit)."""
    max_time: str | None = None
    """Wall-clock limit, ``"DD:HH:MM:SS"``."""
    gradient_clip_val: float | None = None
    """Clip gradients to this norm (or value)."""
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"
    """How ``gradient_clip_val`` clips."""
    accumulate_grad_batches: int = Field(1, ge=1)
    """Batches per optimiser step."""
    check_val_every_n_epoch: int | None = 1
    """Validate every n epochs."""
    val_check_interval: int | float | None = None
    """Validate within an epoch (fraction or batch count)."""
    limit_train_batches: int | float | None = None
    """Use only part of the training batches (fraction or count)."""
    limit_val_batches: int | float | None = None
    """Use only part of the validation batches."""
    limit_test_batches: int | float | None = None
    """Use only part of the test batches."""
    limit_predict_batches: int | float | None = None
    """Use only part of the prediction batches."""
    num_sanity_val_steps: int = 0
    """Validation batches run before training starts (0: none)."""
    default_root_dir: str = "runs"
    """Folder under which each run gets ``<model name>/version_<n>/`` (checkpoints, logs)."""
    deterministic: bool | Literal["warn"] | None = None
    """Ask torch for deterministic algorithms."""
    benchmark: bool | None = None
    """cudnn benchmark mode."""
    enable_progress_bar: bool = True
    """Show Lightning's progress bar."""
    enable_model_summary: bool = False
    """Print Lightning's model summary table."""
    log_every_n_steps: int = Field(50, ge=1)
    """How often training-step metrics are logged."""
    detect_anomaly: bool = False
    """Autograd anomaly detection (slow; for debugging NaNs)."""
    sync_batchnorm: bool = False
    """Synchronise batch norm statistics across devices."""
    reload_dataloaders_every_n_epochs: int = 0
    """Rebuild dataloaders every n epochs (0: never)."""
    if_nothing_trained: Literal["warn", "error"] = "warn"
    """What a ``train`` call that takes no optimiser step does (``max_epochs=0``, or resuming a
    run that already reached ``max_epochs``): warn, or raise."""


class CheckpointConfig(StrictConfig):
    """Checkpoints of a run (on by default): the last one and the best by a metric."""

    enabled: bool = True
    """Write checkpoints."""
    monitor: MetricName | None = None
    """Metric that ranks checkpoints; default ``val/loss`` with validation data, else ``train/loss``."""
    mode: Literal["min", "max"] = "min"
    """Whether lower or higher ``monitor`` is better."""
    save_top_k: int = 1
    """How many best checkpoints to keep."""
    save_last: bool = True
    """Also keep ``last.ckpt`` (what ``ckpt_path="last"`` resumes from)."""
    every_n_epochs: int | None = 1
    """Checkpoint every n epochs."""
    every_n_train_steps: int | None = None
    """Checkpoint every n optimiser steps (mid-epoch checkpoints)."""
    dirpath: str | None = None
    """Folder for checkpoints; default ``<run folder>/checkpoints``."""


class EarlyStoppingConfig(StrictConfig):
    """Stop when a metric stops improving."""

    monitor: MetricName | None = None
    """Metric to watch; default as for checkpoints."""
    patience: int = Field(10, ge=1)
    """Validation rounds without improvement before stopping."""
    mode: Literal["min", "max"] = "min"
    """Whether lower or higher is better."""
    min_delta: float = 0.0
    """Smallest change that counts as an improvement."""


class LoggerConfig(StrictConfig):
    """One logger of a run."""

    name: Literal["csv", "tensorboard", "wandb"] = "csv"
    """``csv`` (default, pandas-readable ``metrics.csv``), ``tensorboard`` or ``wandb``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments of the Lightning logger (e.g. ``project`` for W&B)."""


class OptimizerConfig(StrictConfig):
    """Any ``torch.optim`` class by name with its keyword arguments."""

    name: str = "Adam"
    """A class of ``torch.optim`` (``Adam``, ``AdamW``, ``SGD``, ...)."""
    config: dict[str, Any] = Field(default_factory=lambda: {"lr": 1e-3})
    """Its keyword arguments, e.g. ``{"lr": 1e-3, "amsgrad": true}``."""

    @field_validator("name")
    @classmethod
    def _is_torch_optimizer(cls, name: str) -> str:
        import torch

        candidate = getattr(torch.optim, name, None)
        if not (isinstance(candidate, type) and issubclass(candidate, torch.optim.Optimizer)):
            raise ValueError(f"{name!r} is not a torch.optim optimiser")
        return name


class SchedulerConfig(StrictConfig):
    """Any ``torch.optim.lr_scheduler`` class by name, with an optional linear warm-up.

    In ``config``, the values ``"num_steps"`` / ``"num_epochs"`` (and ``T_max``/``total_steps``
    left out) are filled from the run length.
    """

    name: str = "CosineAnnealingLR"
    """A class of ``torch.optim.lr_scheduler``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Its keyword arguments (``T_max`` / ``total_steps`` filled when missing)."""
    interval: Literal["step", "epoch"] = "step"
    """Step the scheduler every optimiser step or every epoch."""
    frequency: int = Field(1, ge=1)
    """Step every n intervals."""
    monitor: MetricName | None = None
    """Metric for ``ReduceLROnPlateau``; default ``val/loss`` or ``train/loss`` without validation."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up over this many intervals before the scheduler takes over."""
    warmup_start_factor: float = Field(0.01, gt=0, le=1)
    """Learning-rate factor at the start of the warm-up."""

    @field_validator("name")
    @classmethod
    def _is_torch_scheduler(cls, name: str) -> str:
        import torch

        if not isinstance(getattr(torch.optim.lr_scheduler, name, None), type):
            raise ValueError(f"{name!r} is not a torch.optim.lr_scheduler class")
        return name


class LossConfig(StrictConfig):
    """The loss of one target."""

    name: Literal["mse", "mae", "huber", "smooth_l1", "gaussian_nll"] = "mse"
    """Loss function."""
    weight: float = Field(1.0, ge=0)
    """Weight of this target in the total loss."""
    per_atom: bool = False
    """Graph scalars only: compare per-atom values (E / n_atoms), as for extensive energies."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the loss (e.g. ``{"delta": 0.01}`` for huber)."""


class EMAConfig(StrictConfig):
    """Exponential moving average of the weights, used for validation, prediction and saving."""

    decay: float = Field(0.99, gt=0, lt=1)
    """Decay of the average per optimiser step."""
    warmup: bool = True
    """Use ``min(decay, (1 + n) / (10 + n))`` after n updates, so early weights fade quickly."""


class FineTuneStage(StrictConfig):
    """One stage of fine-tuning: which parts are frozen and how this stage trains."""

    freeze: list[str] = Field(default_factory=list)
    """Sub-modules to freeze in this stage (fnmatch patterns of names, e.g. ``["embedding*", "layers.0*"]``)."""
    trainer: dict[str, Any] | None = None
    """Overrides of the ``trainer`` section for this stage (e.g. ``{"max_epochs": 5}``)."""
    optimizer: dict[str, Any] | None = None
    """Overrides of the ``optimizer`` section (each stage starts a fresh optimiser)."""
    scheduler: dict[str, Any] | None = None
    """Overrides of the ``scheduler`` section."""
    datamodule: dict[str, Any] | None = None
    """Overrides of the ``datamodule`` section (e.g. batch sizes)."""


class TransferLearningConfig(StrictConfig):
    """Start from a trained model (a folder written by ``save``) and fine-tune it in stages."""

    pretrained: str
    """Folder of the trained model."""
    modules_to_match: dict[str, str] | None = None
    """New sub-module name -> pretrained sub-module name whose weights it takes (prefixes). By
    default every parameter takes the pretrained parameter of the same name and shape."""
    refit_references: bool = False
    """Refit the per-element reference energies on the new data (a new level of theory); by
    default the pretrained statistics are kept, so training starts from the old accuracy."""
    adapter: Literal["ssf", "bottleneck"] | None = None
    """Parameter-efficient fine-tuning: insert scale-shift (``ssf``) or bottleneck adapters after
    linear layers and train only them (and any new heads)."""
    adapter_targets: list[str] | None = None
    """Layers that get adapters (fnmatch patterns of module names); default every linear layer."""
    bottleneck: int = Field(8, gt=0)
    """Width of bottleneck adapters."""
    stages: list[FineTuneStage] = Field(default_factory=lambda: [FineTuneStage()])
    """Stages run one after the other in one ``train`` call."""
