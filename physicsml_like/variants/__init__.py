"""Model variants that compose with any family: ensembles and parameter-efficient fine-tuning.

(Uncertainty heads are an option of every model, ``uncertainty="mean_var"``; training
techniques such as EMA and ConFIG live in :mod:`physicsml_like.training`.)
"""

from .adapters import (
    BottleneckAdapter,
    IrrepsBottleneckAdapter,
    IrrepsScaleShift,
    ScaleShift,
    insert_adapters,
)
from .ensemble import EnsembleModel
from .finetune import copy_matching_weights, set_trainable

__all__ = [
    "BottleneckAdapter",
    "EnsembleModel",
    "IrrepsBottleneckAdapter",
    "IrrepsScaleShift",
    "ScaleShift",
    "copy_matching_weights",
    "insert_adapters",
    "set_trainable",
]
