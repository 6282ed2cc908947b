"""Validated configuration sections shared by every model family."""

from .base import ConfigError, StrictConfig
from .datamodule import ConformerConfig, DataModuleConfig, SplitConfig, default_cache_dir

__all__ = [
    "ConfigError",
    "ConformerConfig",
    "DataModuleConfig",
    "SplitConfig",
    "StrictConfig",
    "default_cache_dir",
]
