"""The ASE calculators under their first module name; see :mod:`physicsml_like.integrations.ase`."""

from ..integrations.ase import EnsembleCalculator, PhysicsMLCalculator

__all__ = ["EnsembleCalculator", "PhysicsMLCalculator"]
