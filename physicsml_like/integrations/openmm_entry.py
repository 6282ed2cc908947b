"""What openmm-ml's entry point loads: a factory that imports the OpenMM integration when openmm-ml
first asks it for a potential.

openmm-ml loads its entry points while ``openmmml.mlpotential`` is itself being imported, so an
entry point inside :mod:`physicsml_like.integrations.openmm` (which imports openmm-ml) made a
fresh ``import physicsml_like.integrations.openmm`` fail with a circular import. This module
imports neither."""

from __future__ import annotations

from typing import Any

__all__ = ["PhysicsMLLikeEntryPoint"]


class PhysicsMLLikeEntryPoint:
    """Makes the implementation behind ``MLPotential("physicsml_like", model_path=...)``."""

    def createImpl(self, name: str, **args: Any) -> Any:  # openmm-ml's method name
        from .openmm import PhysicsMLLikePotentialImpl

        return PhysicsMLLikePotentialImpl(name, **args)
