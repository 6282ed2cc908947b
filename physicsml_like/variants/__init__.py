"""Model variants that compose with any family: ensembles and parameter-efficient fine-tuning.

The ensemble and the forgetting measure (:func:`forgetting`) live here. The pieces the wrapper applies itself when a config asks for them sit
lower, where the wrapper can import them: the adapter layers (SSF, bottleneck) in
:mod:`physicsml_like.nn.adapters`, LoRA in :mod:`physicsml_like.nn.lora`, the fine-tuning helpers in :mod:`physicsml_like.training.finetune`;
they are re-exported here, where users look for variants. (Uncertainty heads are an option of
every model, ``uncertainty="mean_var"``; training techniques such as EMA and ConFIG live in
:mod:`physicsml_like.training`.)
"""

from ..nn.adapters import (
    BottleneckAdapter,
    IrrepsBottleneckAdapter,
    IrrepsScaleShift,
    ScaleShift,
    insert_adapters,
)
from ..nn.lora import LoRA, LowRankUpdate, insert_lora
from ..training.finetune import copy_matching_weights, refit_references, set_trainable
from .ensemble import EnsembleModel
from .replay import forgetting, replay_table

__all__ = [
    "BottleneckAdapter",
    "EnsembleModel",
    "IrrepsBottleneckAdapter",
    "IrrepsScaleShift",
    "LoRA",
    "LowRankUpdate",
    "ScaleShift",
    "copy_matching_weights",
    "forgetting",
    "insert_adapters",
    "insert_lora",
    "refit_references",
    "replay_table",
    "set_trainable",
]
