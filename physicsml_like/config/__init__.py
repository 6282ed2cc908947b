"""Validated configuration sections shared by every model family."""

from .base import ConfigError, StrictConfig
from .datamodule import ConformerConfig, DataModuleConfig, SplitConfig, default_cache_dir
from .model import ModelConfig
from .training import (
    CallbackConfig,
    CheckpointConfig,
    EarlyStoppingConfig,
    EMAConfig,
    FineTuneStage,
    LoggerConfig,
    LossConfig,
    OptimizerConfig,
    ReplayConfig,
    SchedulerConfig,
    TrainerConfig,
    TransferLearningConfig,
)

__all__ = [
    "CallbackConfig",
    "CheckpointConfig",
    "ConfigError",
    "ConformerConfig",
    "DataModuleConfig",
    "EMAConfig",
    "EarlyStoppingConfig",
    "FineTuneStage",
    "LoggerConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ReplayConfig",
    "SchedulerConfig",
    "SplitConfig",
    "StrictConfig",
    "TrainerConfig",
    "TransferLearningConfig",
    "default_cache_dir",
]
