"""Config sections of a training run: trainer, checkpoints, early stopping, loggers,
optimiser, scheduler, losses and EMA. Every model family reuses them as they are.

The trainer section accepts every argument of ``lightning.Trainer``: the common ones are typed
fields documented here; any other is checked against ``Trainer``'s own signature when it is given
(so a misspelt name is still an error, with a suggestion) and passed on as it is. A config holds
plain data, because it is saved with the model: Lightning objects that a user built (callbacks,
loggers) are given to ``train(..., callbacks=[...], loggers=[...])`` instead.

Lightning is imported only when a value needs it (a callback, strategy or logger named by its
class), so importing the configs stays cheap.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .base import StrictConfig

__all__ = [
    "CallbackConfig",
    "CheckpointConfig",
    "EMAConfig",
    "EarlyStoppingConfig",
    "LoggerConfig",
    "LossConfig",
    "OptimizerConfig",
    "ReplayConfig",
    "SchedulerConfig",
    "TrainerConfig",
    "lightning_class",
    "named_entries",
]


def _metric_name(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"metric names look like 'val/forces_mae' or 'train/loss', got {value!r}")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
"""A logged metric, ``<split>/<name>`` (e.g. ``val/forces_mae``)."""


# ---------------------------------------------------------------------- Lightning objects by name
def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def lightning_class(name: str, module: str, base: str, what: str) -> type:
    """The class ``name`` of the Lightning module ``module`` (``"LearningRateMonitor"`` in
    ``lightning.pytorch.callbacks``) or a user's class as ``"package.module:Class"``; it must
    subclass ``module.base``. A ``ValueError`` names the closest known class on a typo."""
    import importlib

    namespace = importlib.import_module(module)
    base_class = getattr(namespace, base)
    if ":" in name:
        from .._lazy import resolve

        try:
            found = resolve(name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"{what} {name!r} cannot be imported ({err})") from None
    else:
        found = getattr(namespace, name, None)
        if found is None:
            known = sorted(n for n, v in vars(namespace).items() if isinstance(v, type) and issubclass(v, base_class))
            raise ValueError(f"unknown {what} {name!r} (a class of {module}, or 'package.module:Class'){_did_you_mean(name, known)}")
    if not (isinstance(found, type) and issubclass(found, base_class)):
        raise ValueError(f"{what} {name!r} is not a {module}.{base}")
    return found


def check_arguments(cls: type, arguments: dict[str, Any], where: str, passed_on_to: type | None = None) -> None:
    """Every key of ``arguments`` is a parameter of ``cls`` (or of ``passed_on_to``, the class
    that receives its ``**kwargs``); not checked when the keyword arguments go nowhere known."""
    parameters = dict(inspect.signature(cls).parameters)
    if passed_on_to is not None:
        parameters.update(inspect.signature(passed_on_to).parameters)
        parameters = {k: p for k, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for key in arguments:
        if key not in parameters:
            raise ValueError(f"{where}: {cls.__name__} has no argument {key!r}{_did_you_mean(key, list(parameters))}")


def _named_entry(value: Any) -> Any:
    """One named object in any of the forms users write: ``"csv"``, ``{"name": ..., "config":
    {...}}`` (physicsml, molflux), ``{"name": ..., **arguments}`` or MatterTune's ``{"type": ...,
    **arguments}``; returned as ``{"name": ..., "config": {...}}``."""
    if isinstance(value, str):
        return {"name": value, "config": {}}
    if isinstance(value, dict) and ("name" in value or "type" in value):
        key = "name" if "name" in value else "type"
        rest = {k: v for k, v in value.items() if k != key}
        if set(rest) <= {"config"}:
            return {"name": value[key], "config": rest.get("config") or {}}
        if "config" in rest:
            raise PydanticCustomError("named_entry", "give the arguments either under 'config' or beside 'name', not both")
        return {"name": value[key], "config": rest}
    return value


def named_entries(value: Any) -> Any:
    """A list of named objects from a list, a single entry, or a dict of entries keyed by name
    (``{"LearningRateMonitor": {"logging_interval": "step"}}``) or by any label whose value names
    the class (molflux's ``{"lr": {"name": "LearningRateMonitor", "config": {...}}}``)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [_named_entry(value)]
    if isinstance(value, dict):
        if isinstance(value.get("name", value.get("type")), str):
            return [_named_entry(value)]
        out = []
        for key, entry in value.items():
            if isinstance(entry, dict) and ("name" in entry or "type" in entry):
                out.append(_named_entry(entry))
            else:
                out.append({"name": key, "config": entry or {}})
        return out
    if isinstance(value, list | tuple):
        return [_named_entry(v) for v in value]
    return value


class CallbackConfig(StrictConfig):
    """A Lightning callback by name, with its keyword arguments."""

    name: str
    """A class of ``lightning.pytorch.callbacks`` (``LearningRateMonitor``, ``StochasticWeightAveraging``,
    ...) or a user's callback as ``"package.module:Class"``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Its keyword arguments."""

    @model_validator(mode="after")
    def _known_callback(self) -> CallbackConfig:
        check_arguments(self.callback_class, self.config, f"callback {self.name!r}")
        return self

    @property
    def callback_class(self) -> type:
        return lightning_class(self.name, "lightning.pytorch.callbacks", "Callback", "callback")

    def create(self) -> Any:
        """The callback object."""
        return self.callback_class(**self.config)


_LOGGER_ALIASES = {
    "csv": "CSVLogger",
    "tensorboard": "TensorBoardLogger",
    "wandb": "WandbLogger",
    "mlflow": "MLFlowLogger",
    "comet": "CometLogger",
}
# the packages a logger can use (any one) and the extra of this package that installs the first
LOGGER_EXTRAS = {"TensorBoardLogger": (("tensorboard", "tensorboardX"), "tensorboard"), "WandbLogger": (("wandb",), "wandb")}


class LoggerConfig(StrictConfig):
    """One logger of a run. Written as a name (``"tensorboard"``) or a dict."""

    name: str = "csv"
    """``csv`` (default, pandas-readable ``metrics.csv``), ``tensorboard``, ``wandb``, ``mlflow``,
    ``comet``, a class of ``lightning.pytorch.loggers`` (``TensorBoardLogger``) or
    ``"package.module:Class"``. TensorBoard and W&B come with the extras
    ``physicsml_like[tensorboard]`` and ``physicsml_like[wandb]``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments of the Lightning logger (e.g. ``{"project": ..., "offline": true}``
    for W&B); ``save_dir`` defaults to the run folder."""

    @model_validator(mode="before")
    @classmethod
    def _any_form(cls, data: Any) -> Any:
        return _named_entry(data)

    @field_validator("name")
    @classmethod
    def _known_logger(cls, name: str) -> str:
        if name.lower() in _LOGGER_ALIASES:
            return name.lower()
        if name.endswith("Logger") and name in _LOGGER_ALIASES.values():
            return name  # known without importing lightning
        lightning_class(name, "lightning.pytorch.loggers", "Logger", "logger")
        return name

    @property
    def class_name(self) -> str:
        """The Lightning class name (``"tensorboard"`` -> ``"TensorBoardLogger"``)."""
        return _LOGGER_ALIASES.get(self.name, self.name)


# ---------------------------------------------------------------------- the trainer section
@functools.cache
def trainer_arguments() -> dict[str, Any]:
    """Name -> default of every ``lightning.Trainer`` argument (read from its signature)."""
    from lightning.pytorch import Trainer

    parameters = inspect.signature(Trainer.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name != "self"}


# Trainer arguments the package sets itself, and why a config cannot
_SET_BY_THE_PACKAGE = {
    "plugins": "checkpoints are written through the package's atomic checkpoint plugin",
}


def _plain_data(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _unknown_trainer_field(name: str, value: Any, known: list[str]) -> InitErrorDetails:
    message = "unknown field (not a lightning.Trainer argument)" + _did_you_mean(name, known)
    return InitErrorDetails(type=PydanticCustomError("unknown_trainer_argument", message), loc=(name,), input=value)


def _bad_trainer_field(name: str, value: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("trainer_argument", message), loc=(name,), input=value)


_PRECISIONS = {16: "16-mixed", 32: "32-true", 64: "64-true", "16": "16-mixed", "32": "32-true", "64": "64-true", "bf16": "bf16-mixed"}


def _precision(value: Any) -> Any:
    """Lightning's and molflux's spellings (``32``, ``64``, ``"bf16"``) in Lightning's canonical form.

    Half precision *weights* (``"bf16-true"``, ``"16-true"``) are refused rather than made to
    work: the network would hold and differentiate bfloat16/float16 weights and positions, whose
    8- and 11-bit mantissas cannot resolve forces as ``-dE/dr`` (energy differences of meV on
    hundreds of eV), and the float64 reference energies and scatter sums would mix dtypes. Mixed
    precision keeps float32 weights and gives most of the speed."""
    if isinstance(value, bool):
        return value
    value = _PRECISIONS.get(value, value)
    if value in ("bf16-true", "16-true"):
        raise PydanticCustomError(
            "half_precision_weights",
            "'{value}' trains the weights themselves in half precision, which cannot resolve forces "
            "as derivatives of the energy; use '{mixed}' (mixed precision, float32 weights) or model_dtype",
            {"value": value, "mixed": value.replace("true", "mixed")},
        )
    return value


def _strategy_class(name: str) -> tuple[type, dict[str, Any]]:
    """A strategy by registry name (``"ddp"``, ``"fsdp"``...) or class (``"DDPStrategy"``): its
    class and the arguments the registry entry adds."""
    from lightning.pytorch.strategies import StrategyRegistry

    if name in StrategyRegistry:
        entry = StrategyRegistry[name]
        return entry["strategy"], dict(entry["init_params"])
    try:
        return lightning_class(name, "lightning.pytorch.strategies", "Strategy", "strategy"), {}
    except ValueError as err:
        hint = _did_you_mean(name, sorted(StrategyRegistry.available_strategies()))
        raise ValueError(f"{err}{'' if 'did you mean' in str(err) else hint}") from None


def create_strategy(value: str | dict[str, Any]) -> Any:
    """The value of ``trainer.strategy`` as Lightning takes it: a name, or a strategy object
    built from ``{"name": ..., "config": {...}}``."""
    if isinstance(value, str):
        return value
    cls, defaults = _strategy_class(value["name"])
    return cls(**{**defaults, **value["config"]})


class TrainerConfig(StrictConfig):
    """Arguments of ``lightning.Trainer`` (see its documentation for each); any argument not
    listed here is accepted too, checked against ``Trainer``'s signature."""

    model_config = ConfigDict(extra="allow")

    accelerator: str = "auto"
    """``"cpu"``, ``"gpu"``/``"cuda"``, ``"mps"`` or ``"auto"``."""
    devices: int | str | list[int] = "auto"
    """Devices per node: a count, ``"auto"``, or a list of indices."""
    strategy: str | dict[str, Any] = "auto"
    """``"auto"``, ``"ddp"``, ``"ddp_spawn"``, ``"fsdp"``, ... (Lightning does the distribution), or a
    strategy with arguments: ``{"name": "ddp", "find_unused_parameters": true}`` (a registry name
    or a class of ``lightning.pytorch.strategies``, arguments beside the name or under ``config``)."""
    num_nodes: int = Field(1, ge=1)
    """Machines for multi-node DDP."""
    precision: Literal["64-true", "32-true", "16-mixed", "bf16-mixed"] = "32-true"
    """Lightning precision (``32``/``64``/``16`` and ``"bf16"`` are read as Lightning does). The
    model's own dtype is ``model_dtype``; ``"64-true"`` needs it float64. Half-precision weights
    (``"bf16-true"``, ``"16-true"``) are refused: they cannot resolve forces as derivatives."""
    max_epochs: int | None = 100
    """Epochs to train (``None`` with ``max_steps``/``max_time`` set)."""
    min_epochs: int | None = None
    """Train at least this many epochs, even if early stopping triggers."""
    max_steps: int = -1
    """Optimiser steps to train (-1: no limit)."""
    max_time: str | dict[str, int] | None = None
    """Wall-clock limit, ``"DD:HH:MM:SS"`` or ``{"hours": 2}``."""
    gradient_clip_val: float | None = None
    """Clip gradients to this norm (or value)."""
    gradient_clip_algorithm: Literal["norm", "value"] | None = "norm"
    """How ``gradient_clip_val`` clips (``None``: by norm, as Lightning)."""
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
    enable_checkpointing: bool | None = None
    """``false`` turns checkpoints off (as ``checkpoint.enabled: false``); ``true`` needs the
    checkpoint section enabled. The checkpoint section says how checkpoints are written."""
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
    callbacks: list[CallbackConfig] = Field(default_factory=list)
    """Lightning callbacks by name, added to the package's own (checkpoints, early stopping):
    ``[{"name": "LearningRateMonitor", "config": {"logging_interval": "step"}}]`` or
    ``{"LearningRateMonitor": {"logging_interval": "step"}}``."""
    logger: bool | None = None
    """``false`` turns logging off; otherwise the ``loggers`` section says which loggers run."""
    profiler: str | dict[str, Any] | None = None
    """``"simple"``, ``"advanced"``, ``"pytorch"`` or ``{"name": "SimpleProfiler", "config": {...}}``."""
    inference_mode: bool | None = None
    """Accepted for config files that list it; evaluation always runs with autograd on (forces
    and stress are derivatives), so ``true`` is ignored with a warning."""
    use_distributed_sampler: bool | None = None
    """Accepted for config files that list it; the datamodule shards the batches across ranks
    itself, so ``true`` is ignored with a warning."""

    @model_validator(mode="wrap")
    @classmethod
    def _every_trainer_argument(cls, data: Any, handler: Any) -> Any:
        """Fields not typed here must be ``lightning.Trainer`` arguments holding plain data."""
        if isinstance(data, dict):
            extra = {k: v for k, v in data.items() if k not in cls.model_fields}
            errors = []
            if extra:
                arguments = trainer_arguments()
                known = sorted(set(cls.model_fields) | set(arguments))
                for name, value in extra.items():
                    if name not in arguments:
                        errors.append(_unknown_trainer_field(name, value, known))
                    elif name in _SET_BY_THE_PACKAGE:
                        errors.append(_bad_trainer_field(name, value, f"set by the package: {_SET_BY_THE_PACKAGE[name]}"))
                    elif not _plain_data(value):
                        errors.append(_bad_trainer_field(
                            name, value, "a config holds plain data (it is saved with the model); give Lightning "
                            "objects to train(..., callbacks=..., loggers=...)"))
            if errors:
                raise ValidationError.from_exception_data(cls.__name__, errors)
        return handler(data)

    @field_validator("precision", mode="before")
    @classmethod
    def _lightning_precision(cls, value: Any) -> Any:
        return _precision(value)

    @field_validator("callbacks", mode="before")
    @classmethod
    def _callback_forms(cls, value: Any) -> Any:
        return named_entries(value)

    @field_validator("strategy", "profiler", mode="before")
    @classmethod
    def _named_object(cls, value: Any) -> Any:
        return _named_entry(value) if isinstance(value, dict) else value

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(value, dict):
            from lightning.pytorch.strategies import DDPStrategy
            from torch.nn.parallel import DistributedDataParallel

            strategy, _ = _strategy_class(value["name"])
            # DDPStrategy hands its other keyword arguments to torch's DistributedDataParallel
            receiver = DistributedDataParallel if issubclass(strategy, DDPStrategy) else None
            check_arguments(strategy, value["config"], f"strategy {value['name']!r}", receiver)
        return value

    @field_validator("profiler")
    @classmethod
    def _known_profiler(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, dict):
            check_arguments(lightning_class(value["name"], "lightning.pytorch.profilers", "Profiler", "profiler"),
                            value["config"], f"profiler {value['name']!r}")
        return value

    @field_validator("inference_mode", "use_distributed_sampler")
    @classmethod
    def _set_by_the_package(cls, value: bool | None, info: Any) -> bool | None:
        if value:
            why = ("evaluation needs autograd: forces and stress are derivatives" if info.field_name == "inference_mode"
                   else "the datamodule shards the batches across ranks itself")
            warnings.warn(f"trainer.{info.field_name}=True is ignored: {why}", UserWarning, stacklevel=2)
        return value

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``lightning.Trainer`` for the fields that map one to one (the
        package handles ``callbacks``, ``logger``, ``enable_checkpointing`` and the run folder)."""
        handled = {"default_root_dir", "callbacks", "logger", "enable_checkpointing", "inference_mode", "use_distributed_sampler",
                   "if_nothing_trained"}
        kwargs = {k: v for k, v in self.model_dump(exclude=handled).items() if v is not None or k == "max_epochs"}
        kwargs["strategy"] = create_strategy(self.strategy)
        if isinstance(self.profiler, dict):
            kwargs["profiler"] = lightning_class(self.profiler["name"], "lightning.pytorch.profilers", "Profiler", "profiler")(
                **self.profiler["config"])
        return kwargs


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
    filename: str = "best-{epoch}-{step}"
    """File name of the best checkpoints (Lightning's format: ``{epoch}``, ``{step}`` and metric
    names such as ``{val/loss:.4f}`` are filled in)."""

    def create_callback(
        self, dirpath: str | Path | None = None, monitor: str | None = None, callback_class: type | None = None
    ) -> Any:
        """The ``ModelCheckpoint`` these settings describe, for a Trainer built by hand as well.

        ``dirpath`` is used when the section has none; ``monitor`` overrides the section's
        (default ``val/loss``); ``callback_class`` is a ``ModelCheckpoint`` subclass to build
        (the package's training uses one whose ``last.ckpt`` is always the newest epoch)."""
        from lightning.pytorch.callbacks import ModelCheckpoint

        folder = self.dirpath or dirpath
        return (callback_class or ModelCheckpoint)(
            dirpath=str(folder) if folder is not None else None,
            filename=self.filename,
            monitor=monitor or self.monitor or "val/loss",
            mode=self.mode,
            save_top_k=self.save_top_k,
            save_last=self.save_last,
            every_n_epochs=self.every_n_epochs if self.every_n_train_steps is None else None,
            every_n_train_steps=self.every_n_train_steps,
            auto_insert_metric_name=False,
        )


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

    def create_callback(self, monitor: str | None = None) -> Any:
        """The ``EarlyStopping`` callback these settings describe (``monitor`` overrides the
        section's, default ``val/loss``), for a Trainer built by hand as well."""
        from lightning.pytorch.callbacks import EarlyStopping

        return EarlyStopping(monitor=monitor or self.monitor or "val/loss", patience=self.patience, mode=self.mode,
                             min_delta=self.min_delta)


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

    freeze: list[str] = Field(default_factory=list, validation_alias=AliasChoices("freeze", "freeze_modules"))
    """Sub-modules to freeze in this stage (fnmatch patterns of names, e.g. ``["embedding*", "layers.0*"]``)."""
    trainer: dict[str, Any] | None = None
    """Overrides of the ``trainer`` section for this stage (e.g. ``{"max_epochs": 5}``)."""
    optimizer: dict[str, Any] | None = None
    """Overrides of the ``optimizer`` section (each stage starts a fresh optimiser)."""
    scheduler: dict[str, Any] | None = None
    """Overrides of the ``scheduler`` section."""
    datamodule: dict[str, Any] | None = None
    """Overrides of the ``datamodule`` section (e.g. batch sizes)."""


class ReplayConfig(StrictConfig):
    """Structures labelled by the pretrained model itself and mixed into the fine-tuning data,
    so that fine-tuning is also asked to keep what the pretrained model predicted there (less
    forgetting; measure it with :func:`physicsml_like.variants.forgetting`)."""

    structures: Any
    """The replay structures: a path (saved with the config) or a list of ``ase.Atoms`` / a
    DataFrame (used for the run; the saved config records only what it was). Their labels are
    ignored: every target the fine-tuning data has (energy, forces, stress, ...) is the
    pretrained model's prediction at the start of fine-tuning."""
    count: int | None = Field(None, ge=1)
    """How many of them to mix in (drawn once, without replacement, with ``seed``)."""
    fraction: float | None = Field(None, gt=0)
    """Instead of ``count``: this many replay structures per training structure (0.5 mixes one
    replay structure for every two of the fine-tuning data), at most all of them."""
    seed: int = 0
    """Seeds the draw of ``count`` / ``fraction`` structures."""

    @model_validator(mode="after")
    def _count_or_fraction(self) -> ReplayConfig:
        if self.count is not None and self.fraction is not None:
            raise ValueError("give replay.count or replay.fraction, not both")
        return self

    @field_serializer("structures", when_used="json")
    def _saved_as(self, value: Any) -> Any:
        """In saved configs (JSON) a path stays, structures in memory become a description; a
        Python dump (``updated``, copies) keeps the structures themselves."""
        if isinstance(value, str | Path):
            return str(value)
        size = f" of {len(value)} structures" if hasattr(value, "__len__") else ""
        return f"<{type(value).__name__}{size}, not saved>"


class TransferLearningConfig(StrictConfig):
    """Start from a trained model (a folder written by ``save``, or the weights a converted
    pretrained model holds) and fine-tune it in stages."""

    pretrained: str | None = Field(None, validation_alias=AliasChoices("pretrained", "pre_trained_model_path"))
    """Folder of the trained model (physicsml's ``pre_trained_model_path`` is read as well).
    Left out for a model that already holds its pretrained weights (one converted by
    :func:`~physicsml_like.pretrained.load_pretrained`): fine-tuning then starts from them."""
    modules_to_match: dict[str, str] | None = None
    """New sub-module name -> pretrained sub-module name whose weights it takes (prefixes). By
    default every parameter takes the pretrained parameter of the same name and shape."""
    refit_references: bool | Literal["residual", "labels"] = False
    """Per-element reference energies for new data (a new level of theory, a different DFT code):

    - ``"residual"``: the pretrained network and its scale and shift are kept, and the
      references change by the least-squares fit of what the pretrained model misses on the
      new labels: ``dE0 = lstsq(counts, E_label - E_pretrained)``, ``E0_new = E0_old + dE0``. A
      level of theory that differs by a constant per element then costs nothing: the refitted
      model predicts the new labels before any training. Elements absent from the new data keep
      their references.
    - ``"labels"`` (``true``, physicsml's meaning): references and per-atom shift fitted to the
      new labels alone, as for a model trained from scratch. The pretrained network's outputs
      then come on top of references that already carry the energy, so the start is off by the
      network's own per-element share (a few meV/atom on a small model); training has to undo it.
    - ``false`` (default): the pretrained statistics are kept, so training starts from the old
      accuracy."""
    adapter: Literal["ssf", "bottleneck", "lora"] | None = None
    """Parameter-efficient fine-tuning: insert scale-shift (``ssf``) or bottleneck adapters after
    linear layers, or low-rank updates of their weights (``lora``), and train only them (and any
    new heads); the pretrained weights stay frozen. Each starts as the identity, so fine-tuning
    starts exactly from the pretrained model."""
    adapter_targets: list[str] | None = None
    """Layers that get adapters (fnmatch patterns of module names); default every linear layer."""
    bottleneck: int = Field(8, gt=0)
    """Width of bottleneck adapters (at most the width of the layer they adapt)."""
    bottleneck_ratio: int | None = Field(None, gt=0)
    """Instead of ``bottleneck``: the layer's width (per irrep) divided by this, at least 1
    (physicsml's ``ratio_adapter_down``)."""
    lora_rank: int = Field(4, ge=1)
    """``adapter="lora"``: rank of each weight update ``B @ A`` (capped at the smaller side of each
    matrix; per irrep for equivariant layers)."""
    lora_alpha: float = Field(4.0, gt=0)
    """``adapter="lora"``: the update is scaled by ``lora_alpha / lora_rank`` (PEFT's, MatterTune's
    and mace-torch's convention; the default scales by 1 at rank 4)."""
    replay: ReplayConfig | None = None
    """Mix structures labelled by the pretrained model into the fine-tuning data (off by
    default): ``{"structures": "bulk_au_ni_al.extxyz", "count": 40}``."""
    stages: list[FineTuneStage] = Field(default_factory=lambda: [FineTuneStage()])
    """Stages run one after the other in one ``train`` call."""

    @field_validator("refit_references")
    @classmethod
    def _true_means_labels(cls, value: bool | str) -> bool | str:
        return "labels" if value is True else value

    @model_validator(mode="after")
    def _options_of_the_adapter(self) -> TransferLearningConfig:
        # compared with the defaults, not by the fields set: a saved config lists every field
        defaults = {name: type(self).model_fields[name].default for name in ("lora_rank", "lora_alpha")}
        if self.adapter != "lora" and any(getattr(self, name) != value for name, value in defaults.items()):
            raise ValueError(f"lora_rank / lora_alpha apply to adapter='lora', got adapter={self.adapter!r}")
        return self
