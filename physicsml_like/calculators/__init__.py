"""Calculators for simulation codes (ASE)."""

from .ase import EnsembleCalculator, PhysicsMLCalculator

__all__ = ["EnsembleCalculator", "PhysicsMLCalculator"]
