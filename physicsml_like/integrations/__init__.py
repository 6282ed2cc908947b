"""Adapters to simulation codes (ASE), over the model's one inference path.

The wrapper reaches them by name through :mod:`physicsml_like.training.extensions`
(``model.to_ase_calculator()``), so ``training`` never imports this layer.
"""

from .ase import EnsembleCalculator, PhysicsMLCalculator

__all__ = ["EnsembleCalculator", "PhysicsMLCalculator"]
