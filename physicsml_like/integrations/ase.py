"""ASE calculators: molecular dynamics, relaxations and anything else ASE drives.

A thin adapter over :class:`~physicsml_like.integrations.potential.Potential`, the one inference
path: a step costs the neighbour list plus one forward and backward pass. ASE's units are the
model's (eV, Å), so only layouts are converted (stress to ASE's Voigt order).
"""

from __future__ import annotations

from typing import Any

import ase
import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from ..errors import DataError
from ..training.module import AtomisticLightningModule
from .potential import Potential

__all__ = ["EnsembleCalculator", "PhysicsMLCalculator"]


class PhysicsMLCalculator(Calculator):
    """An ASE calculator for a trained model.

    Parameters
    ----------
    model: a trained :class:`~physicsml_like.training.wrapper.PhysicsMLModel` (or its module).
    device: ``"cpu"``, ``"cuda"``, ...
    dtype: ``"float32"`` or ``"float64"`` to run in another precision than the model was trained
        in (float64 for long energy-conserving dynamics); default: the model's.

    Notes
    -----
    Results: ``energy`` (and ``free_energy``), ``forces``, ``stress`` for periodic cells when the
    model computes stress (ASE's Voigt order and sign), and the model's other targets (e.g.
    ``charges``, ``dipole``) under their names.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: Any, *, device: str = "cpu", dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.potential = Potential(model, device=device, dtype=dtype)
        self.module: AtomisticLightningModule = self.potential.module
        if self.potential.energy_key is None:
            raise DataError("the ASE calculator needs a model with an energy target")
        self.energy_key = self.potential.energy_key
        # what this model gives: energy always, forces and stress only when it computes them
        names = [t.ase_name or t.name for t in self.module.all_targets]
        self.implemented_properties = list(dict.fromkeys(["energy", "free_energy", *names]))

    def _predict(self, atoms: ase.Atoms) -> dict[str, Any]:
        names = self.potential.graph_attrs_names
        attrs = [np.asarray(atoms.info[name], dtype=np.float64).reshape(-1) for name in names] if names else None
        values = self.potential(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                graph_attrs=np.concatenate(attrs)[None] if attrs else None)
        return {name: value.numpy() for name, value in values.items()}

    def calculate(self, atoms: ase.Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        self.results = _results(self._predict(self.atoms), self.module, self.atoms)

    @classmethod
    def from_saved(cls, path: str, **kwargs: Any) -> PhysicsMLCalculator:
        """A calculator for a model saved with ``model.save(path)``."""
        from ..training.wrapper import load_model

        return cls(load_model(path), **kwargs)


def _results(raw: dict[str, Any], module: AtomisticLightningModule, atoms: ase.Atoms) -> dict[str, Any]:
    """ASE results of one structure: each target names its own (energy, forces, stress in ASE's
    Voigt order and sign, other targets under their names)."""
    results: dict[str, Any] = {}
    for target in module.all_targets:
        if target.name in raw:
            results.update(target.ase_results(np.asarray(raw[target.name]), atoms))
    return results


class EnsembleCalculator(Calculator):
    """An ASE calculator averaging the members of an ensemble; their spread is reported too
    (``energy_std`` and ``forces_std`` in ``calc.results``)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energy_std", "forces_std"]

    def __init__(self, ensemble: Any, *, device: str = "cpu", dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calculators = [PhysicsMLCalculator(m, device=device, dtype=dtype) for m in ensemble.members]

    def calculate(self, atoms: ase.Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        outputs = [calc._predict(self.atoms) for calc in self.calculators]
        module = self.calculators[0].module
        per_member = [_results(out, module, self.atoms) for out in outputs]
        results: dict[str, Any] = {}
        for key in per_member[0]:
            stacked = np.stack([np.asarray(r[key], dtype=np.float64) for r in per_member])
            mean = stacked.mean(axis=0)
            results[key] = float(mean) if np.ndim(mean) == 0 else mean
            if key in ("energy", "forces"):
                std = stacked.std(axis=0, ddof=1)
                results[f"{key}_std"] = float(std) if np.ndim(std) == 0 else std
        self.results = results
