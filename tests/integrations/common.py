"""Models and structures shared by the export tests: the saved tiny models of every family and
four kinds of structure made of each model's elements (none of them the one the export traces)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch

from physicsml_like import load_model
from physicsml_like.datasets import load_dataset

SAVED = Path(__file__).resolve().parents[1] / "compat" / "saved"
FAMILIES = {  # family -> saved model (the periodic ones compute stress)
    "egnn": "egnn_molecule", "mace": "mace_periodic", "nequip": "nequip_molecule", "allegro": "allegro_periodic",
    "ani": "ani_molecule", "tensornet": "tensornet_molecule", "painn": "painn_periodic",
}
KINDS = ("molecule", "bulk", "slab", "small_cell")


def saved(name: str) -> Any:
    return load_model(SAVED / name)


def perturbed(model: Any, seed: int, scale: float = 0.05) -> Any:
    """The same model with every inference weight moved (an ensemble member, an EMA average)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.module.inference_network().parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return model


def _base(model: Any) -> ase.Atoms:
    elements = set(model.module.element_mapping.elements or ())
    atoms = load_dataset("cu_emt")[7][:9] if elements <= {29} else load_dataset("ethanol")[23]
    atoms = atoms.copy()
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    atoms.positions -= atoms.positions.mean(axis=0)
    atoms.rattle(0.08, seed=3)
    return atoms


def structure(model: Any, kind: str) -> ase.Atoms:
    """``kind`` of :data:`KINDS`, of the model's elements."""
    atoms = _base(model)
    if kind == "molecule":
        return atoms
    if kind == "small_cell":  # shorter than twice the cutoff (4 Å) along every direction, triclinic
        small = atoms[:4].copy()
        small.cell = [[3.6, 0.0, 0.0], [0.7, 3.4, 0.0], [0.4, -0.5, 3.9]]
        small.pbc = True
        return small
    extent = np.ptp(atoms.positions, axis=0)
    atoms.cell = np.diag(extent + 2.5) + [[0, 0, 0], [0.6, 0, 0], [0, 0.3, 0]]
    atoms.pbc = True if kind == "bulk" else [True, True, False]
    atoms.positions[0] += atoms.cell[0] * 1.2  # unwrapped: an atom outside the cell
    return atoms


def predicted(model: Any, frames: list[ase.Atoms]) -> list[dict[str, np.ndarray]]:
    """What ``predict`` computes per structure (energy, forces, stress when predicted), through
    the module's ``predict_values`` on a one-structure batch: predict's function without the
    Trainer's start-up, which would dominate these tests."""
    from physicsml_like.integrations.potential import Potential

    potential = Potential(model)
    rows = []
    for atoms in frames:
        values = potential(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc)
        row = {"energy": values["energy"].numpy()[0], "forces": values["forces"].numpy()}
        if "stress" in values:
            row["stress"] = values["stress"].numpy()[0]
        rows.append(row)
    return rows


def inputs(atoms: ase.Atoms, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    return (torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers, dtype=torch.long),
            torch.tensor(np.asarray(atoms.cell), dtype=dtype), torch.tensor(atoms.pbc))
