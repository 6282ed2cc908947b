"""The one internal representation of a dataset: a columnar table of structures.

Every source (files, ``ase.Atoms``, DataFrames, SMILES, RDKit molecules) becomes a
:class:`StructureTable`: per-atom arrays concatenated over all structures plus an offsets array,
per-structure arrays with one row per structure, and optional per-bond arrays for molecules.
There is no Python object per atom, so tables of millions of atoms cost a few arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from ..config.datamodule import DataModuleConfig
from ..errors import DataError

__all__ = ["LabelRequest", "StructureTable", "join_offsets"]


@dataclass(frozen=True)
class LabelRequest:
    """Which labels to read from a source, grouped by level and expected shape."""

    graph_scalars: tuple[str, ...] = ()
    graph_vectors: tuple[str, ...] = ()
    stress: str | None = None
    graph_attrs: tuple[str, ...] = ()
    node_scalars: tuple[str, ...] = ()
    node_vectors: tuple[str, ...] = ()
    edge_scalars: tuple[str, ...] = ()
    edge_vectors: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: DataModuleConfig, with_labels: bool = True) -> LabelRequest:
        """Labels named by the config; graph attributes are inputs and always read."""
        graph_attrs = tuple(config.graph_attrs_cols or ())
        if not with_labels:
            return cls(graph_attrs=graph_attrs)
        return cls(
            graph_scalars=tuple(config.y_graph_scalars or ()),
            graph_vectors=(config.y_graph_vector,) if config.y_graph_vector else (),
            stress=config.y_stress,
            graph_attrs=graph_attrs,
            node_scalars=tuple(config.y_node_scalars or ()),
            node_vectors=(config.y_node_vector,) if config.y_node_vector else (),
            edge_scalars=tuple(config.y_edge_scalars or ()),
            edge_vectors=(config.y_edge_vector,) if config.y_edge_vector else (),
        )

    @property
    def graph_names(self) -> tuple[str, ...]:
        return self.graph_scalars + self.graph_vectors + ((self.stress,) if self.stress else ()) + self.graph_attrs

    @property
    def node_names(self) -> tuple[str, ...]:
        return self.node_scalars + self.node_vectors

    @property
    def edge_names(self) -> tuple[str, ...]:
        return self.edge_scalars + self.edge_vectors


def _empty_ptr() -> np.ndarray:
    return np.zeros(1, dtype=np.int64)


@dataclass
class StructureTable:
    """Structures as concatenated arrays.

    Attributes
    ----------
    atomic_numbers: ``[N]`` int16, all atoms of all structures.
    positions: ``[N, 3]`` float64, Cartesian coordinates in Å (unwrapped).
    atom_ptr: ``[S + 1]`` int64, atoms of structure ``s`` are ``atom_ptr[s]:atom_ptr[s+1]``.
    cell: ``[S, 3, 3]`` float64, rows are lattice vectors (zeros when there is none).
    pbc: ``[S, 3]`` bool.
    graph_labels: name -> ``[S, ...]`` float64 (labels and graph attributes).
    node_labels: name -> ``[N, ...]`` float64.
    atom_features: ``[N, F]`` float32 RDKit atom features, or ``None``.
    bond_index: ``[M, 2]`` int32 bonds (each once, local atom indices), or ``None``.
    bond_ptr: ``[S + 1]`` int64 offsets into the bonds, or ``None``.
    bond_attrs: ``[M, F]`` float32 RDKit bond features, or ``None``.
    bond_labels: name -> ``[M, ...]`` float64 per-bond labels.
    row_ids: ``[S]`` int64, index of each structure in its source (for error messages).
    source: a readable name of the source.
    """

    atomic_numbers: np.ndarray
    positions: np.ndarray
    atom_ptr: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    graph_labels: dict[str, np.ndarray] = field(default_factory=dict)
    node_labels: dict[str, np.ndarray] = field(default_factory=dict)
    atom_features: np.ndarray | None = None
    bond_index: np.ndarray | None = None
    bond_ptr: np.ndarray | None = None
    bond_attrs: np.ndarray | None = None
    bond_labels: dict[str, np.ndarray] = field(default_factory=dict)
    row_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    source: str = "data"

    # ------------------------------------------------------------------ sizes
    @property
    def num_structures(self) -> int:
        return len(self.atom_ptr) - 1

    @property
    def num_atoms(self) -> int:
        return int(self.atom_ptr[-1])

    @property
    def atoms_per_structure(self) -> np.ndarray:
        return np.diff(self.atom_ptr)

    def __len__(self) -> int:
        return self.num_structures

    def structure_of_atom(self, atom: int) -> int:
        """The structure index that owns a global atom index."""
        return int(np.searchsorted(self.atom_ptr, atom, side="right") - 1)

    def frame_id(self, structure: int) -> int:
        """The source row/frame index of a structure."""
        return int(self.row_ids[structure]) if len(self.row_ids) else structure

    # ------------------------------------------------------------------ building
    @classmethod
    def from_lists(
        cls,
        *,
        numbers: Sequence[np.ndarray],
        positions: Sequence[np.ndarray],
        cells: Sequence[np.ndarray],
        pbcs: Sequence[np.ndarray],
        graph_labels: dict[str, list[np.ndarray]],
        node_labels: dict[str, list[np.ndarray]],
        row_ids: Sequence[int],
        source: str,
        atom_features: Sequence[np.ndarray] | None = None,
        bonds: Sequence[np.ndarray] | None = None,
        bond_attrs: Sequence[np.ndarray] | None = None,
        bond_labels: dict[str, list[np.ndarray]] | None = None,
    ) -> StructureTable:
        """Concatenate per-structure arrays (already shape-checked by the reader)."""
        counts = np.fromiter((len(z) for z in numbers), dtype=np.int64, count=len(numbers))
        atom_ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=atom_ptr[1:])
        table = cls(
            atomic_numbers=_concat(numbers, np.int16, (0,)),
            positions=_concat(positions, np.float64, (0, 3)),
            atom_ptr=atom_ptr,
            cell=np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3),
            pbc=np.asarray(pbcs, dtype=bool).reshape(-1, 3),
            graph_labels={k: np.asarray(v, dtype=np.float64) for k, v in graph_labels.items()},
            node_labels={k: _concat(v, np.float64, None) for k, v in node_labels.items()},
            row_ids=np.asarray(row_ids, dtype=np.int64),
            source=source,
        )
        if atom_features is not None:
            table.atom_features = _concat(atom_features, np.float32, None)
        if bonds is not None:
            bcounts = np.fromiter((len(b) for b in bonds), dtype=np.int64, count=len(bonds))
            table.bond_ptr = np.zeros(len(bcounts) + 1, dtype=np.int64)
            np.cumsum(bcounts, out=table.bond_ptr[1:])
            table.bond_index = _concat(bonds, np.int32, (0, 2))
            if bond_attrs is not None:
                table.bond_attrs = _concat(bond_attrs, np.float32, None)
            table.bond_labels = {k: _concat(v, np.float64, None) for k, v in (bond_labels or {}).items()}
        return table

    @classmethod
    def concatenate(cls, tables: Iterable[StructureTable]) -> StructureTable:
        """Join tables (e.g. chunks of one source) into one."""
        tables = list(tables)
        if not tables:
            raise DataError("the dataset is empty")
        if len(tables) == 1:
            return tables[0]
        first = tables[0]
        out = cls(
            atomic_numbers=_join(tables, "atomic_numbers"),
            positions=_join(tables, "positions"),
            atom_ptr=join_offsets([t.atom_ptr for t in tables]),
            cell=_join(tables, "cell"),
            pbc=_join(tables, "pbc"),
            graph_labels=_join_named(tables, "graph_labels"),
            node_labels=_join_named(tables, "node_labels"),
            row_ids=_join(tables, "row_ids"),
            source=first.source,
        )
        if first.atom_features is not None:
            out.atom_features = _join(tables, "atom_features")
        if first.bond_index is not None:
            out.bond_ptr = join_offsets([cast(np.ndarray, t.bond_ptr) for t in tables])
            out.bond_index = _join(tables, "bond_index")
            if first.bond_attrs is not None:
                out.bond_attrs = _join(tables, "bond_attrs")
            out.bond_labels = _join_named(tables, "bond_labels")
        return out

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`DataError` naming the frame and field of the first bad value.

        Checks: non-empty, finite positions and labels, atomic numbers in 1..118, and a cell of
        non-zero volume along every periodic direction.
        """
        if self.num_structures == 0:
            raise DataError("the dataset is empty (no structures)", source=self.source)
        empty = np.flatnonzero(self.atoms_per_structure == 0)
        if len(empty):
            raise DataError("the structure has no atoms", source=self.source, index=self.frame_id(int(empty[0])))
        bad_z = np.flatnonzero((self.atomic_numbers < 1) | (self.atomic_numbers > 118))
        if len(bad_z):
            s = self.structure_of_atom(int(bad_z[0]))
            raise DataError(
                f"atomic number {int(self.atomic_numbers[bad_z[0]])} is not an element",
                source=self.source,
                index=self.frame_id(s),
                field="atomic_numbers",
            )
        self._check_finite(self.positions, "positions", per_atom=True)
        for name, values in self.node_labels.items():
            self._check_finite(values, name, per_atom=True)
        for name, values in self.graph_labels.items():
            self._check_finite(values, name, per_atom=False)
        self._check_cells()

    def _check_finite(self, values: np.ndarray, name: str, *, per_atom: bool) -> None:
        finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if finite.all():
            return
        first = int(np.argmin(finite))
        structure = self.structure_of_atom(first) if per_atom else first
        what = f"atom {first - int(self.atom_ptr[structure])}" if per_atom else "value"
        raise DataError(
            f"NaN or inf in {name} ({what})",
            source=self.source,
            index=self.frame_id(structure),
            field=name,
        )

    def _check_cells(self) -> None:
        periodic = self.pbc.any(axis=1)
        if not periodic.any():
            return
        for s in np.flatnonzero(periodic):
            vectors = self.cell[s][self.pbc[s]]
            lengths = np.linalg.norm(vectors, axis=1)
            if (lengths < 1e-8).any() or np.linalg.matrix_rank(vectors, tol=1e-8) < len(vectors):
                axes = "".join("xyz"[k] for k in np.flatnonzero(self.pbc[s]))
                raise DataError(
                    f"periodic along {axes} but the cell has zero volume along those directions "
                    f"(cell = {self.cell[s].tolist()})",
                    source=self.source,
                    index=self.frame_id(int(s)),
                    field="cell",
                )


def join_offsets(ptrs: Sequence[np.ndarray]) -> np.ndarray:
    """Offset arrays of consecutive parts as one: each part's offsets shifted by the items before it."""
    parts = [np.zeros(1, dtype=np.int64)]
    base = 0
    for ptr in ptrs:
        parts.append(ptr[1:] + base)
        base += int(ptr[-1])
    return np.concatenate(parts)


def _join(tables: Sequence[StructureTable], name: str) -> np.ndarray:
    """One array attribute of every table, concatenated along the first axis."""
    return np.concatenate([getattr(t, name) for t in tables])


def _join_named(tables: Sequence[StructureTable], name: str) -> dict[str, np.ndarray]:
    """A name -> array attribute of every table, concatenated per name (the first table's names)."""
    parts: list[dict[str, np.ndarray]] = [getattr(t, name) for t in tables]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _concat(parts: Sequence[np.ndarray], dtype: type, empty_shape: tuple[int, ...] | None) -> np.ndarray:
    if len(parts) == 0:
        return np.zeros(empty_shape or (0,), dtype=dtype)
    # the reader checked every part: one concatenation casts them all (no per-part conversion)
    return np.concatenate(parts, axis=0, dtype=dtype, casting="unsafe")
