"""ASE calculators: molecular dynamics, relaxations and anything else ASE drives.

A call builds only what changes with the positions: the neighbour list. Element slots and one-hot
node attributes are computed once per set of atomic numbers, and the batch is assembled directly
(no datamodule, no Trainer), so a step costs the neighbour list plus one forward and backward pass.
"""

from __future__ import annotations

import copy
from typing import Any

import ase
import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from torch_geometric.data import Batch

from .. import keys as K
from ..data.neighbours import neighbour_list
from ..errors import DataError
from ..nn.builder import torch_dtype
from ..training.module import AtomisticLightningModule

__all__ = ["EnsembleCalculator", "PhysicsMLCalculator"]


class _GraphMaker:
    """Single-structure batches for one model; node attributes cached per composition."""

    def __init__(self, module: AtomisticLightningModule, device: torch.device) -> None:
        dm = module.config.datamodule
        if dm.atom_features or dm.bond_features:
            raise DataError("models with RDKit atom or bond features need molecules, not ase.Atoms; "
                            "the ASE calculator supports models without them")
        self.cutoff = dm.cut_off
        self.self_interaction = dm.self_interaction
        self.graph_attrs = dm.graph_attrs_cols
        self.mapping = module.element_mapping
        self._lut = self.mapping.lookup_table()
        self.device = device
        self._numbers: bytes | None = None
        self._node: dict[str, torch.Tensor] = {}

    def _nodes(self, atoms: ase.Atoms) -> dict[str, torch.Tensor]:
        key = atoms.numbers.tobytes()
        if key != self._numbers:
            self.mapping.check(atoms.numbers, "ase.Atoms")
            species = self._lut[atoms.numbers]
            n = len(atoms)
            self._node = {
                K.ATOMIC_NUMBERS: torch.as_tensor(atoms.numbers, dtype=torch.long, device=self.device),
                K.SPECIES: torch.as_tensor(species, dtype=torch.long, device=self.device),
                K.NODE_ATTRS: torch.eye(self.mapping.size, device=self.device)[torch.as_tensor(species, device=self.device)],
                K.BATCH: torch.zeros(n, dtype=torch.long, device=self.device),
                K.PTR: torch.tensor([0, n], device=self.device),
            }
            self._numbers = key
        return self._node

    def __call__(self, atoms: ase.Atoms) -> Batch:
        cell = atoms.cell.array
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and abs(np.linalg.det(cell[pbc] @ cell[pbc].T)) < 1e-12:
            raise DataError("periodic but the cell has zero volume along the periodic directions", field="cell")
        i, j, shifts = neighbour_list(atoms.positions, cell, pbc, self.cutoff, self.self_interaction)
        device = self.device
        fields = dict(self._nodes(atoms))
        fields[K.POSITIONS] = torch.as_tensor(atoms.positions, dtype=torch.float64, device=device)
        fields[K.EDGE_INDEX] = torch.as_tensor(np.stack([i, j]), dtype=torch.long, device=device)
        fields[K.CELL_SHIFT] = torch.as_tensor(shifts, dtype=torch.float64, device=device)
        fields[K.CELL] = torch.as_tensor(cell, dtype=torch.float64, device=device).reshape(1, 3, 3)
        fields[K.PBC] = torch.as_tensor(pbc, device=device).reshape(1, 3)
        if self.graph_attrs:
            values = [np.asarray(atoms.info[name], dtype=np.float64).reshape(-1) for name in self.graph_attrs]
            fields[K.GRAPH_ATTRS] = torch.as_tensor(np.concatenate(values), dtype=torch.float32, device=device).reshape(1, -1)
        batch = Batch(**fields)
        batch._num_graphs = 1
        return batch


def _prepare(module: AtomisticLightningModule, device: str | torch.device, dtype: str | None) -> AtomisticLightningModule:
    module = copy.deepcopy(module).to(device)
    if dtype is not None:
        target = torch_dtype(dtype)
        # floating parameters change dtype; the float64 reference energies and scales stay float64
        module.network.to(target)
        inference = module.inference_network()
        if inference is not module.network:
            inference.to(target)
        module.model_dtype = target
    module.eval()
    return module


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
        module = model if isinstance(model, AtomisticLightningModule) else model._require_module()
        self.module = _prepare(module, device, dtype)
        config = self.module.config
        if config.energy_key is None:
            raise DataError("the ASE calculator needs a model with an energy target")
        self._graphs = _GraphMaker(self.module, torch.device(device))
        self.energy_key = config.energy_key
        # what this model gives: energy always, forces and stress only when it computes them
        names = [t.ase_name or t.name for t in self.module.all_targets]
        self.implemented_properties = list(dict.fromkeys(["energy", "free_energy", *names]))

    def _predict(self, atoms: ase.Atoms) -> dict[str, Any]:
        values = self.module.predict_values(self._graphs(atoms))
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
