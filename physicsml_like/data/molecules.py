"""RDKit molecules: SMILES to 3D conformers, atom features and bond features."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit import RDLogger as _RDLogger
from rdkit.Chem import AllChem as _AllChem

from ..config.datamodule import AtomFeature, ConformerConfig
from ..errors import DataError

# rdkit's bundled stubs lack most of AllChem and RDLogger: use them untyped
AllChem: Any = _AllChem
RDLogger: Any = _RDLogger

__all__ = [
    "BOND_FEATURE_NAMES",
    "atom_feature_matrix",
    "atom_feature_size",
    "bond_arrays",
    "embed_molecule",
    "molecule_from_smiles",
]

_HYBRIDISATIONS = (
    Chem.rdchem.HybridizationType.S,
    Chem.rdchem.HybridizationType.SP,
    Chem.rdchem.HybridizationType.SP2,
    Chem.rdchem.HybridizationType.SP3,
    Chem.rdchem.HybridizationType.SP3D,
    Chem.rdchem.HybridizationType.SP3D2,
)
_MAX_DEGREE = 5
# sizes of each atom feature block (one-hots carry an "other" slot where values can overflow)
_FEATURE_SIZE: dict[str, int] = {
    "formal_charge": 1,
    "aromatic": 1,
    "in_ring": 1,
    "degree": _MAX_DEGREE + 1,
    "hybridisation": len(_HYBRIDISATIONS) + 1,
}
BOND_FEATURE_NAMES = ("is_bond", "single", "double", "triple", "aromatic", "conjugated", "in_ring")
_BOND_TYPES = (
    Chem.rdchem.BondType.SINGLE,
    Chem.rdchem.BondType.DOUBLE,
    Chem.rdchem.BondType.TRIPLE,
    Chem.rdchem.BondType.AROMATIC,
)


@contextmanager
def _quiet_rdkit() -> Iterator[None]:
    """RDKit prints parse errors to stderr; we raise our own error that names the row instead."""
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        RDLogger.EnableLog("rdApp.*")


def molecule_from_smiles(smiles: str, *, index: int, source: str) -> Chem.Mol:
    """Parse a SMILES string; an unparsable one raises :class:`DataError` naming it."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise DataError(f"not a SMILES string: {smiles!r}", source=source, index=index, field="smiles")
    with _quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"unparsable SMILES {smiles!r}", source=source, index=index, field="smiles")
    return mol


def embed_molecule(mol: Chem.Mol, config: ConformerConfig, *, index: int, source: str) -> Chem.Mol:
    """Add hydrogens and a seeded 3D conformer (ETKDGv3, then optional MMFF/UFF relaxation).

    A molecule that already has a 3D conformer and explicit hydrogens is returned unchanged.
    """
    if mol.GetNumConformers() > 0 and mol.GetConformer().Is3D():
        return mol
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = config.seed
    with _quiet_rdkit():
        status = -1
        for attempt in range(config.max_attempts):
            params.randomSeed = config.seed + attempt
            params.useRandomCoords = attempt > 0
            status = AllChem.EmbedMolecule(mol, params)
            if status == 0:
                break
        if status != 0:
            raise DataError(
                f"RDKit could not embed a 3D conformer for {Chem.MolToSmiles(mol)!r} "
                f"in {config.max_attempts} attempts",
                source=source,
                index=index,
                field="smiles",
            )
        if config.optimise == "mmff" and AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
        elif config.optimise is not None and AllChem.UFFHasAllMoleculeParams(mol):
            AllChem.UFFOptimizeMolecule(mol, maxIters=500)
    return mol


def atom_feature_size(names: Sequence[AtomFeature]) -> int:
    """Width of the atom-feature block for the chosen features."""
    return sum(_FEATURE_SIZE[name] for name in names)


def atom_feature_matrix(mol: Chem.Mol, names: Sequence[AtomFeature]) -> np.ndarray:
    """``[n_atoms, F]`` float32 features in the order of ``names``."""
    atoms = list(mol.GetAtoms())
    blocks: list[np.ndarray] = []
    for name in names:
        if name == "formal_charge":
            blocks.append(np.array([[a.GetFormalCharge()] for a in atoms], dtype=np.float32))
        elif name == "aromatic":
            blocks.append(np.array([[a.GetIsAromatic()] for a in atoms], dtype=np.float32))
        elif name == "in_ring":
            blocks.append(np.array([[a.IsInRing()] for a in atoms], dtype=np.float32))
        elif name == "degree":
            block = np.zeros((len(atoms), _MAX_DEGREE + 1), dtype=np.float32)
            block[np.arange(len(atoms)), [min(a.GetDegree(), _MAX_DEGREE) for a in atoms]] = 1.0
            blocks.append(block)
        elif name == "hybridisation":
            block = np.zeros((len(atoms), len(_HYBRIDISATIONS) + 1), dtype=np.float32)
            for k, a in enumerate(atoms):
                h = a.GetHybridization()
                block[k, _HYBRIDISATIONS.index(h) if h in _HYBRIDISATIONS else len(_HYBRIDISATIONS)] = 1.0
            blocks.append(block)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(atoms), 0), dtype=np.float32)


def bond_arrays(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """Bonds (each once) as ``[M, 2]`` int32 and their ``[M, 7]`` float32 features."""
    bonds = list(mol.GetBonds())
    index = np.array([[b.GetBeginAtomIdx(), b.GetEndAtomIdx()] for b in bonds], dtype=np.int32).reshape(-1, 2)
    attrs = np.zeros((len(bonds), len(BOND_FEATURE_NAMES)), dtype=np.float32)
    for k, b in enumerate(bonds):
        attrs[k, 0] = 1.0
        bt = b.GetBondType()
        if bt in _BOND_TYPES:
            attrs[k, 1 + _BOND_TYPES.index(bt)] = 1.0
        attrs[k, 5] = float(b.GetIsConjugated())
        attrs[k, 6] = float(b.IsInRing())
    return index, attrs
