"""The config every model family extends: shared sections plus the family's hyperparameters."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictConfig
from .datamodule import DataModuleConfig
from .targets import TargetKind, TargetSpec, targets_from_config
from .training import (
    CheckpointConfig,
    EarlyStoppingConfig,
    EMAConfig,
    LoggerConfig,
    LossConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainerConfig,
    TransferLearningConfig,
    named_entries,
)

__all__ = ["BUILTIN_TRAINING_MODULES", "ModelConfig", "TargetKind", "register_training_module_name", "training_module_names"]

BUILTIN_TRAINING_MODULES = ("default", "ema", "config", "ema_config")
"""The training techniques of the package (``physicsml_like.training.techniques``)."""
_REGISTERED_TRAINING_MODULES: list[str] = []


def register_training_module_name(name: str) -> None:
    """Make ``training_module=name`` valid; called by ``training.techniques.register_technique``
    (the config sits below training, so it knows techniques by name only)."""
    if name not in BUILTIN_TRAINING_MODULES and name not in _REGISTERED_TRAINING_MODULES:
        _REGISTERED_TRAINING_MODULES.append(name)


def training_module_names() -> list[str]:
    """Every valid ``training_module``: the built-in techniques and the registered ones."""
    return [*BUILTIN_TRAINING_MODULES, *_REGISTERED_TRAINING_MODULES]


class ModelConfig(StrictConfig):
    """Shared sections of every model config; a family adds its hyperparameters.

    Targets are named in ``datamodule`` (``y_graph_scalars``, ``y_node_vector``, ...). With
    ``compute_forces`` the first graph scalar is the energy and forces are ``-dE/dr``; the
    ``y_node_vector`` label (if any) is compared with them. With ``compute_stress`` the stress is
    the strain derivative of the energy over the volume.
    """

    datamodule: DataModuleConfig = Field(default_factory=DataModuleConfig)
    """Targets, graph construction and batching."""
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    """``lightning.Trainer`` arguments."""
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    """Checkpointing (on by default)."""
    early_stopping: EarlyStoppingConfig | None = None
    """Early stopping (off by default)."""
    loggers: list[LoggerConfig] = Field(default_factory=lambda: [LoggerConfig(name="csv")])
    """Loggers of a run (CSV by default): names (``["csv", "tensorboard"]``) or dicts
    (``{"name": "wandb", "config": {"project": "p"}}``); ``[]`` or ``trainer.logger: false`` for none."""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """Optimiser (``torch.optim`` class and arguments)."""
    scheduler: SchedulerConfig | None = Field(default_factory=SchedulerConfig)
    """Learning-rate scheduler (cosine decay over the run by default; ``None`` keeps it constant)."""
    losses: dict[str, LossConfig] = Field(default_factory=dict)
    """Loss per target name. Every target without an entry gets MSE with weight 1, except: the
    energy target compares energies per atom (``per_atom: true``) and stress has weight 10."""
    ema: EMAConfig | None = None
    """Exponential moving average of the weights (off by default; setting it turns EMA on)."""
    training_module: str | None = None
    """Training technique: ``default``; ``ema`` (moving average of the weights); ``config``
    (ConFIG conflict-free gradients across loss terms); ``ema_config`` (both); or the name of a
    technique registered with ``register_technique``. Default: ``ema`` when ``ema`` is set, else
    ``default``."""
    uncertainty: Literal["mean_var"] | None = None
    """``mean_var``: every scalar target (graph and node scalars) gets a variance head trained with
    the Gaussian negative log-likelihood; ``predict(..., return_std=True)`` then gives standard
    deviations and prediction intervals. Forces and stress stay derivatives of the mean energy."""
    pool_type: Literal["sum", "mean"] = "sum"
    """Pooling of per-atom outputs into graph scalars other than the energy (always summed)."""
    energy_target: str | None = None
    """The graph scalar that is an extensive energy: per-element reference energies, a per-atom
    scale and shift, a sum over atoms. Default: the first graph scalar when forces or stress are
    computed, else the graph scalar named ``energy`` if there is one."""
    compute_forces: bool = False
    """Forces as ``-dE/dr`` of the energy (``energy_target``)."""
    compute_stress: bool = False
    """Stress as ``(1/V) dE/dε`` for periodic structures (ASE sign convention)."""
    model_dtype: Literal["float32", "float64"] = "float32"
    """dtype of the network's parameters and computations."""
    compile_training: bool = False
    """Run each training step (network, forces and stress, loss and the weights' gradient) as
    one graph compiled by inductor: MACE trains 1.8x as many ethanol structures a second at
    batch 8, with the same gradients to float tolerance, after a compile of 30 s to 3 minutes at
    the first step and again for each new batch layout (number of structures in a batch, set of trainable
    weights). A step that cannot be recorded (random operations, a stress loss, sizes that depend
    on the data) trains eagerly with a warning; validation and prediction are not compiled. See
    ``docs/training.md``."""
    seed: int = 0
    """Seeds the network's initialisation and the training run, and the order of the training
    batches unless ``datamodule.seed`` is set."""
    transfer_learning: TransferLearningConfig | None = None
    """Fine-tune a saved model on this model's data (stages, frozen parts, adapters)."""
    energy_references: dict[str, float] | None = None
    """Per-element reference energies (keys: symbols or atomic numbers) instead of the least-squares
    fit on the training data."""
    energy_shift: float | None = None
    """Per-atom energy shift instead of the training data's mean residual per atom."""
    energy_scale: float | None = None
    """Per-atom energy scale instead of the training data's force RMS (or energy spread)."""

    # ------------------------------------------------------------------ validation
    @field_validator("training_module")
    @classmethod
    def _known_training_module(cls, name: str | None) -> str | None:
        known = training_module_names()
        if name is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown training technique {name!r} (known: {known}; a technique of your own "
                             f"is registered with physicsml_like.training.register_technique){hint}")
        return name

    @field_validator("loggers", mode="before")
    @classmethod
    def _logger_forms(cls, value: Any) -> Any:
        return named_entries(value)

    @model_validator(mode="after")
    def _consistent_energy(self) -> ModelConfig:
        dm = self.datamodule
        if self.energy_target is not None and self.energy_target not in (dm.y_graph_scalars or []):
            raise ValueError(
                f"energy_target {self.energy_target!r} is not one of datamodule.y_graph_scalars "
                f"{dm.y_graph_scalars}"
            )
        if (self.compute_forces or self.compute_stress) and not dm.y_graph_scalars:
            raise ValueError(
                "compute_forces / compute_stress need an energy: set datamodule.y_graph_scalars "
                "(its first entry is the energy), e.g. ['energy']"
            )
        if dm.y_stress and not self.compute_stress:
            raise ValueError(
                f"datamodule.y_stress={dm.y_stress!r} is set but compute_stress is False; stress is "
                "predicted as the strain derivative of the energy, so set compute_stress=True"
            )
        if self.energy_references is not None:
            from ase.data import atomic_numbers

            for key in self.energy_references:
                if key not in atomic_numbers and not (key.isdigit() and 0 < int(key) < 119):
                    raise ValueError(f"energy_references: {key!r} is not an element symbol or atomic number")
        return self

    @model_validator(mode="after")
    def _consistent_training(self) -> ModelConfig:
        if self.training_module in ("default", "config") and self.ema is not None:
            raise ValueError(
                f"ema is set but training_module={self.training_module!r} does not use it; "
                "choose 'ema' or 'ema_config', or drop ema"
            )
        if self.resolved_training_module in ("config", "ema_config") and self.trainer.accumulate_grad_batches > 1:
            raise ValueError(
                "training_module ConFIG combines per-term gradients each step; "
                "trainer.accumulate_grad_batches must be 1"
            )
        if self.compile_training and self.resolved_training_module in ("config", "ema_config"):
            raise ValueError(
                "compile_training compiles the plain training step, and training_module ConFIG takes one "
                "gradient per loss term; set compile_training=False"
            )
        if self.trainer.precision == "64-true" and self.model_dtype != "float64":
            raise ValueError("trainer.precision '64-true' needs model_dtype 'float64'")
        if self.trainer.enable_checkpointing and not self.checkpoint.enabled:
            raise ValueError("trainer.enable_checkpointing is true but checkpoint.enabled is false; keep one of them")
        return self

    @property
    def checkpointing(self) -> bool:
        """Whether a run writes checkpoints: ``checkpoint.enabled`` unless
        ``trainer.enable_checkpointing`` is false."""
        return self.checkpoint.enabled and self.trainer.enable_checkpointing is not False

    @property
    def logging(self) -> bool:
        """Whether a run logs: there are loggers and ``trainer.logger`` is not false."""
        return bool(self.loggers) and self.trainer.logger is not False

    @model_validator(mode="after")
    def _consistent_losses(self) -> ModelConfig:
        targets = {t.name: t for t in self.targets if t.labelled}
        unknown = sorted(set(self.losses) - set(targets))
        if unknown:
            raise ValueError(
                f"losses has an entry for {unknown[0]!r}, which is not a target; targets are "
                f"{sorted(targets)} (set them in datamodule.y_*)"
            )
        for name, loss in self.losses.items():
            target = targets[name]
            if loss.per_atom and target.kind not in ("energy", "graph_scalar"):
                raise ValueError(f"losses.{name}.per_atom applies to graph scalars only")
            if loss.name == "gaussian_nll" and not target.has_variance:
                raise ValueError(
                    f"losses.{name}: gaussian_nll needs a variance head: set uncertainty='mean_var' "
                    "(graph and node scalars only)"
                )
            if target.has_variance and loss.name != "gaussian_nll":
                raise ValueError(
                    f"losses.{name}: with uncertainty='mean_var' a scalar target is trained with "
                    f"gaussian_nll (its variance head would learn nothing from {loss.name!r})"
                )
        return self

    @property
    def run_datamodule(self) -> DataModuleConfig:
        """The datamodule section a run uses: an unset shuffle seed becomes the model's ``seed``."""
        if self.datamodule.seed is not None:
            return self.datamodule
        return self.datamodule.model_copy(update={"seed": self.seed})

    @property
    def resolved_training_module(self) -> str:
        """``training_module`` with its default filled in."""
        if self.training_module is not None:
            return self.training_module
        return "ema" if self.ema is not None else "default"

    # ------------------------------------------------------------------ targets
    @property
    def energy_key(self) -> str | None:
        """The graph scalar treated as an extensive energy (see ``energy_target``), or ``None``."""
        scalars = self.datamodule.y_graph_scalars or []
        if self.energy_target is not None:
            return self.energy_target
        if self.compute_forces or self.compute_stress:
            return scalars[0]
        return "energy" if "energy" in scalars else None

    @property
    def forces_key(self) -> str:
        """Name of the forces in predictions (the node-vector label's name, else ``forces``)."""
        return self.datamodule.y_node_vector or "forces"

    @property
    def stress_key(self) -> str:
        return self.datamodule.y_stress or "stress"

    @property
    def targets(self) -> list[TargetSpec]:
        """Every target, labelled or only predicted, as typed objects (see :mod:`.targets`)."""
        return targets_from_config(
            self.datamodule,
            energy_key=self.energy_key,
            compute_forces=self.compute_forces,
            compute_stress=self.compute_stress,
            uncertainty=self.uncertainty,
        )

    def target_kinds(self) -> dict[str, TargetKind]:
        """Name -> kind of every target the model is trained on (those with labels)."""
        return {t.name: t.kind for t in self.targets if t.labelled}

    def resolved_losses(self) -> dict[str, LossConfig]:
        """A loss for every labelled target: the configured one, else the kind's default (MSE,
        weight 1; see each target's ``default_loss``), ``gaussian_nll`` with a variance head."""
        out = {}
        for target in self.targets:
            if target.labelled:
                fields: dict[str, Any] = dict(target.default_loss)
                if target.has_variance:
                    fields["name"] = "gaussian_nll"
                out[target.name] = self.losses.get(target.name) or LossConfig(**fields)
        return out
