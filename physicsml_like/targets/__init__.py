"""Typed targets: each kind owns its scaling, head request, readout, label, metrics, assembly
and ASE result (see :mod:`physicsml_like.config.targets` for the typed descriptions).

Adding a property means adding one description class and one :class:`Target` subclass here.
"""

from ..config.model import ModelConfig
from ..config.targets import TargetSpec
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from .base import MIN_VARIANCE, Pair, Readout, Target
from .heads import output_spec
from .kinds import (
    EdgeScalar,
    EdgeVector,
    Energy,
    Forces,
    GraphScalar,
    GraphVector,
    NodeScalar,
    NodeVector,
    Stress,
)

__all__ = [
    "MIN_VARIANCE",
    "TARGET_CLASSES",
    "EdgeScalar",
    "EdgeVector",
    "Energy",
    "Forces",
    "GraphScalar",
    "GraphVector",
    "NodeScalar",
    "NodeVector",
    "Pair",
    "Readout",
    "Stress",
    "Target",
    "build_targets",
    "output_spec",
]

#: The behaviour of each kind of target description.
TARGET_CLASSES: dict[str, type[Target]] = {
    cls.spec_class.model_fields["kind"].default: cls
    for cls in (Energy, GraphScalar, GraphVector, Stress, NodeScalar, NodeVector, Forces, EdgeScalar, EdgeVector)
}


def build_targets(config: ModelConfig, statistics: DatasetStatistics, mapping: ElementMapping) -> list[Target]:
    """Every target of ``config`` with its scales from ``statistics``."""
    return [_build(spec, statistics, config, mapping) for spec in config.targets]


def _build(spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> Target:
    return TARGET_CLASSES[spec.kind](spec, statistics, config, mapping)
