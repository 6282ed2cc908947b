"""The ASE calculators under their first name; they live in :mod:`physicsml_like.integrations`."""

from ..integrations.ase import EnsembleCalculator, PhysicsMLCalculator

__all__ = ["EnsembleCalculator", "PhysicsMLCalculator"]
