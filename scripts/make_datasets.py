"""Generate the small labelled datasets bundled with physicsml_like.

Labels come from real physics codes: GFN2-xTB (tblite) for molecules and ASE's EMT for copper.
Every step is seeded, so running this again reproduces the files (up to the codes' versions,
recorded in ``datasets.json``).

    python scripts/make_datasets.py            # writes physicsml_like/datasets/files/

Needs ``tblite`` (pip install tblite) besides the package's own dependencies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase import units
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

OUT = Path(__file__).resolve().parents[1] / "physicsml_like" / "datasets" / "files"

# small organic molecules: C, H, N, O (+ F, S, Cl in a few) covering common groups
SMILES = [
    "C", "CC", "CCC", "CCCC", "CC(C)C", "CCCCC", "CC(C)(C)C", "C1CC1", "C1CCC1", "C1CCCC1",
    "C1CCCCC1", "C=C", "CC=C", "C=CC=C", "C#C", "CC#C", "c1ccccc1", "Cc1ccccc1", "CO", "CCO",
    "CCCO", "CC(C)O", "OCCO", "COC", "CCOCC", "C1CCOC1", "C=O", "CC=O", "CCC=O", "CC(C)=O",
    "CC(=O)CC", "OC=O", "CC(=O)O", "CCC(=O)O", "COC=O", "CC(=O)OC", "N", "CN", "CCN", "CNC",
    "CN(C)C", "NCCN", "C1CCNC1", "C1CCNCC1", "c1ccncc1", "c1cc[nH]c1", "c1ccoc1", "C#N", "CC#N",
    "NC=O", "CC(N)=O", "CNC=O", "NC(N)=O", "O", "OO", "c1ccc(O)cc1", "c1ccc(N)cc1",
    "c1ccc(C=O)cc1", "Cc1ccncc1", "CC(C)CO", "CCCCO", "OCC(O)CO", "CC(O)C(=O)O", "NCC(=O)O",
    "CC(N)C(=O)O", "C=CC=O", "C=CC#N", "O=C1CCCC1", "O=C1CCCCC1", "C1COCCO1", "C1CNCCN1",
    "CC1=CC=CC=C1C", "c1ccc2ccccc2c1", "c1ccc(cc1)C(=O)O", "CCOC(=O)C", "CCN(CC)CC",
    "CC(=O)N(C)C", "FC(F)F", "CF", "CCF", "c1ccc(F)cc1", "CCl", "ClCCl", "CCCl", "c1ccc(Cl)cc1",
    "CS", "CSC", "CCS", "c1ccsc1", "CS(C)=O", "OC(=O)C=C", "CC(C)=C", "C1=CC=CC1", "CC(C)C(C)C",
    "C1CC2CCC1C2", "CC(=O)C=C", "N#CC#N", "O=CC=O", "CC(C)N",
]
ETHANOL_STEPS = 6000
ETHANOL_EVERY = 10
CU_FRAMES = 300
SLAB_FRAMES = 120


def _xtb():
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0, accuracy=1.0)


def _freeze(atoms: ase.Atoms, with_charges: bool = True) -> ase.Atoms:
    """Copy with the calculator's results frozen (energy, forces, stress, charges, dipole)."""
    calc = atoms.calc
    out = atoms.copy()
    results = {"energy": calc.get_potential_energy(atoms), "forces": calc.get_forces(atoms)}
    if with_charges:
        results["charges"] = calc.get_charges(atoms)
        results["dipole"] = calc.get_dipole_moment(atoms)
    if atoms.pbc.any():
        results["stress"] = calc.get_stress(atoms)
    out.calc = SinglePointCalculator(out, **results)
    return out


def make_ethanol(rng: np.random.Generator) -> list[ase.Atoms]:
    """GFN2-xTB Langevin MD of ethanol at 500 K, 0.5 fs steps, one frame every 10 steps."""
    atoms = molecule("CH3CH2OH")
    atoms.calc = _xtb()
    MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=rng)
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=500, friction=0.02, rng=rng)
    frames = []
    for step in range(ETHANOL_STEPS):
        dyn.run(1)
        if step % ETHANOL_EVERY == ETHANOL_EVERY - 1:
            frames.append(_freeze(atoms))
    return frames


def make_small_molecules(rng: np.random.Generator) -> tuple[list[ase.Atoms], list[dict]]:
    """Per SMILES: an RDKit ETKDG conformer relaxed with MMFF, plus one rattled copy."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    frames, rows = [], []
    for index, smiles in enumerate(SMILES):
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        params = AllChem.ETKDGv3()
        params.randomSeed = 1000 + index
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise RuntimeError(f"could not embed {smiles}")
        AllChem.MMFFOptimizeMolecule(mol)
        numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
        positions = mol.GetConformer().GetPositions()
        for variant, noise in (("relaxed", 0.0), ("rattled", 0.06)):
            atoms = ase.Atoms(numbers=numbers, positions=positions + rng.normal(0, noise, positions.shape))
            atoms.info["smiles"] = smiles
            atoms.info["conformer"] = variant
            atoms.calc = _xtb()
            frozen = _freeze(atoms)
            frames.append(frozen)
            if variant == "relaxed":
                dipole = frozen.calc.results["dipole"]
                rows.append(
                    {
                        "smiles": smiles,
                        "energy": frozen.calc.results["energy"],
                        "dipole_norm": float(np.linalg.norm(dipole)),
                        "n_atoms": len(atoms),
                    }
                )
    return frames, rows


def make_cu(rng: np.random.Generator) -> list[ase.Atoms]:
    """fcc Cu 2x2x2 conventional cells (32 atoms), each frame with its own strained, sheared
    cell, rattled atoms and in 20 % of frames a vacancy; EMT energy, forces and stress."""
    frames = []
    for _ in range(CU_FRAMES):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
        strain = np.eye(3) * (1 + rng.uniform(-0.04, 0.04))
        shear = rng.uniform(-0.01, 0.01, (3, 3))
        atoms.set_cell(atoms.cell.array @ (strain + (shear + shear.T) / 2), scale_atoms=True)
        atoms.rattle(stdev=rng.uniform(0.02, 0.15), seed=int(rng.integers(1 << 30)))
        if rng.random() < 0.2:
            del atoms[int(rng.integers(len(atoms)))]
        atoms.calc = EMT()
        frames.append(_freeze(atoms, with_charges=False))
    return frames


def make_cu_slab(rng: np.random.Generator) -> list[ase.Atoms]:
    """Cu(111) slabs periodic in x and y only (pbc = T T F), rattled; EMT energy and forces."""
    frames = []
    for _ in range(SLAB_FRAMES):
        atoms = fcc111("Cu", size=(2, 2, 4), vacuum=6.0, a=3.61 * (1 + rng.uniform(-0.02, 0.02)))
        atoms.pbc = (True, True, False)
        atoms.info.pop("adsorbate_info", None)  # not serialisable, not needed
        atoms.rattle(stdev=rng.uniform(0.02, 0.12), seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        frame = _freeze(atoms, with_charges=False)
        frame.calc.results.pop("stress", None)  # stress is not defined without full periodicity
        frames.append(frame)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", nargs="*", default=None, help="dataset names to (re)make")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import importlib.metadata as md

    manifest_path = args.out / "datasets.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    versions = {p: md.version(p) for p in ("ase", "tblite", "rdkit", "numpy")}

    def wanted(name: str) -> bool:
        return args.only is None or name in args.only

    def write(name: str, frames: list[ase.Atoms], description: str, labels: list[str]) -> None:
        path = args.out / f"{name}.extxyz.gz"
        ase.io.write(path, frames, format="extxyz")
        manifest[name] = {
            "file": path.name,
            "frames": len(frames),
            "atoms": sorted({len(f) for f in frames}),
            "periodic": sorted({"".join("T" if p else "F" for p in f.pbc) for f in frames}),
            "labels": labels,
            "description": description,
            "made_with": versions,
        }
        print(f"{name}: {len(frames)} frames -> {path} ({path.stat().st_size / 1e3:.0f} kB)")

    t0 = time.time()
    if wanted("ethanol"):
        write("ethanol", make_ethanol(np.random.default_rng(1)),
              "ethanol, GFN2-xTB (tblite) Langevin MD at 500 K, 0.5 fs step, a frame every 10 steps",
              ["energy", "forces", "charges", "dipole"])
    if wanted("small_molecules"):
        frames, rows = make_small_molecules(np.random.default_rng(2))
        write("small_molecules", frames,
              "small organic molecules from SMILES: RDKit ETKDG + MMFF conformer and a rattled copy, "
              "GFN2-xTB single points; 'smiles' and 'conformer' in info",
              ["energy", "forces", "charges", "dipole"])
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.out / "small_molecules.csv", index=False)
    if wanted("cu_emt"):
        write("cu_emt", make_cu(np.random.default_rng(3)),
              "fcc Cu 2x2x2 conventional (31-32 atoms), a strained and sheared cell per frame, "
              "rattled, 20 % with a vacancy; ASE EMT",
              ["energy", "forces", "stress"])
    if wanted("cu_slab"):
        write("cu_slab", make_cu_slab(np.random.default_rng(4)),
              "Cu(111) 2x2x4 slab periodic in x and y only (pbc T T F), rattled; ASE EMT",
              ["energy", "forces"])
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
