"""Reference ANI-1x / ANI-2x AEVs from torchani, for tests/models/data/ani_reference_aevs.npz.

Run in an environment of its own with ``torchani==2.9.0`` (and ase), never in the project's:
the project computes AEVs itself and only compares against these numbers in its tests::

    python -m venv /tmp/ani-ref && /tmp/ani-ref/bin/pip install torch==2.13.0 torchani==2.9.0
    /tmp/ani-ref/bin/python scripts/make_ani_reference.py tests/models/data/ani_reference_aevs.npz

Three structures: an ethanol frame of the bundled dataset (ANI-1x AEV), a molecule made of
every ANI-2x element (ANI-2x AEV) and a periodic box of H, C, N, O atoms (ANI-1x AEV), whose
atoms see their own periodic images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase.data import chemical_symbols
from torchani.aev import AEVComputer

ELEMENTS = {"ani1": ["H", "C", "N", "O"], "ani2": ["H", "C", "N", "O", "S", "F", "Cl"]}
ROOT = Path(__file__).resolve().parents[1]


def _scattered(symbols: list[str], box: float, min_distance: float, seed: int) -> np.ndarray:
    """Random positions in a cube with no two atoms closer than ``min_distance``."""
    rng = np.random.default_rng(seed)
    positions: list[np.ndarray] = []
    while len(positions) < len(symbols):
        trial = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(trial - p) >= min_distance for p in positions):
            positions.append(trial)
    return np.array(positions)


def _aev(preset: str, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    computer = AEVComputer.like_1x() if preset == "ani1" else AEVComputer.like_2x()
    computer = computer.double()
    slot = {symbol: k for k, symbol in enumerate(ELEMENTS[preset])}
    species = torch.tensor([[slot[chemical_symbols[z]] for z in numbers]])
    coords = torch.tensor(positions[None], dtype=torch.float64)
    if cell is None:
        aev = computer(species, coords)
    else:
        aev = computer(species, coords, cell=torch.tensor(cell, dtype=torch.float64), pbc=torch.tensor([True, True, True]))
    return aev[0].numpy()


def main(out: Path) -> None:
    ethanol = ase.io.read(ROOT / "physicsml_like/datasets/files/ethanol.extxyz.gz", index=0)
    mixed_symbols = ["H", "C", "N", "O", "S", "F", "Cl", "H", "C"]
    mixed = _scattered(mixed_symbols, 4.0, 1.0, seed=1)
    box_symbols = ["C", "H", "H", "N", "O"]
    box_cell = np.array([[4.2, 0.0, 0.0], [0.3, 4.0, 0.0], [-0.2, 0.4, 4.4]])
    box = _scattered(box_symbols, 3.6, 1.0, seed=2)
    arrays: dict[str, np.ndarray] = {}
    cases = {
        "ethanol": ("ani1", ethanol.numbers, ethanol.positions, None),
        "mixed": ("ani2", np.array([ase.data.atomic_numbers[s] for s in mixed_symbols]), mixed, None),
        "box": ("ani1", np.array([ase.data.atomic_numbers[s] for s in box_symbols]), box, box_cell),
    }
    for name, (preset, numbers, positions, cell) in cases.items():
        arrays[f"{name}_preset"] = np.array(preset)
        arrays[f"{name}_numbers"] = np.asarray(numbers)
        arrays[f"{name}_positions"] = np.asarray(positions, dtype=np.float64)
        arrays[f"{name}_cell"] = np.zeros((3, 3)) if cell is None else cell
        arrays[f"{name}_aev"] = _aev(preset, np.asarray(numbers), np.asarray(positions), cell)
        print(name, preset, arrays[f"{name}_aev"].shape)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/models/data/ani_reference_aevs.npz")
