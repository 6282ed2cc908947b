"""Small labelled alloy cells (EMT) and a tiny float64 model pretrained on them, shared by the
reference-refit and replay tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ase
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

TARGETS = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0}


def alloy_cells(n: int, seed: int, elements: tuple[str, str] = ("Cu", "Au"), rattle: float = 0.08) -> list[ase.Atoms]:
    """``n`` rattled 8-atom fcc cells with a varying share of the second element, EMT labels."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = bulk(elements[0], "fcc", a=3.8, cubic=True).repeat((2, 1, 1))
        share = rng.integers(0, len(atoms) + 1) if k else 0
        symbols = [elements[1] if i < share else elements[0] for i in rng.permutation(len(atoms))]
        atoms.set_chemical_symbols(symbols)
        atoms.positions += rng.normal(0, rattle, atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


def relabelled(frames: list[ase.Atoms], energies: np.ndarray, forces: list[np.ndarray]) -> list[ase.Atoms]:
    out = []
    for atoms, energy, force in zip(frames, energies, forces, strict=True):
        copy = atoms.copy()
        copy.calc = SinglePointCalculator(copy, energy=float(energy), forces=np.asarray(force))
        out.append(copy)
    return out


def tiny_fields(root: Path, epochs: int = 2, **extra: Any) -> dict[str, Any]:
    return {"datamodule": {**TARGETS, "train": {"batch_size": 8}}, "compute_forces": True, "model_dtype": "float64",
            "c_hidden": 16, "num_layers": 2, "num_rbf": 8, "scheduler": None,
            "trainer": {"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False, "precision": 64},
            "optimizer": {"name": "Adam", "config": {"lr": 3e-3}}, **extra}
