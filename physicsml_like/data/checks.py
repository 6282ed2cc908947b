"""Checks for inputs that are almost surely mistakes, with the numbers that show it.

Two things train without any error and waste a run: a cutoff far larger than meant (a 30 Å
cutoff on 7 Å copper cells gives about 9,700 neighbours per atom and gigabytes of edges), and
atoms at (nearly) the same position (a duplicated frame merged into one, Bohr read as Å). Both
are checked while the graphs are built, chunk by chunk, so a run that goes wrong says so before
the expensive part. ``DataModuleConfig.input_checks`` makes them errors instead of warnings.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..config.datamodule import DataModuleConfig
from ..errors import DataError
from .neighbours import EdgeArrays
from .table import StructureTable

__all__ = ["InputChecks"]

# bytes a packed graph holds per edge: edge_index (2 x int32) and shifts (3 x int16)
_PACKED_BYTES_PER_EDGE = 2 * 4 + 3 * 2
# distances are computed this many edges at a time, so the check itself stays small
_EDGE_BLOCK = 1 << 20


class InputChecks:
    """Accumulates neighbour counts and close pairs over the chunks of one source."""

    def __init__(self, config: DataModuleConfig, source: str) -> None:
        self.config = config
        self.source = source
        self.atoms = 0
        self.edges = 0
        self.structures = 0
        self.most_neighbours = (0, -1)  # (count, frame)
        self._warned: set[str] = set()

    def add(self, table: StructureTable, edges: EdgeArrays) -> None:
        """Check one chunk; warns once per kind of problem, or raises :class:`DataError`."""
        self._count_neighbours(table, edges)
        if self.config.min_distance is not None and self.config.min_distance > 0:
            self._check_distances(table, edges, _real_edges(edges))

    # ------------------------------------------------------------------ neighbours
    def _count_neighbours(self, table: StructureTable, edges: EdgeArrays) -> None:
        per_atom = edges.neighbours_per_atom
        if per_atom is None:
            real = _real_edges(edges)
            owner = np.repeat(np.arange(table.num_structures), np.diff(edges.edge_ptr))
            centres = edges.edge_index[real, 0].astype(np.int64) + table.atom_ptr[owner[real]]
            per_atom = np.bincount(centres, minlength=table.num_atoms)
        self.atoms += table.num_atoms
        self.edges += int(per_atom.sum())
        self.structures += table.num_structures
        if table.num_atoms:
            busiest = int(np.argmax(per_atom))
            if per_atom[busiest] > self.most_neighbours[0]:
                self.most_neighbours = (int(per_atom[busiest]), table.frame_id(table.structure_of_atom(busiest)))
        limit = self.config.max_neighbours_per_atom
        if limit is None or not self.atoms or self.edges / self.atoms <= limit or "neighbours" in self._warned:
            return
        self._report("neighbours", self._neighbour_message(limit))

    def _neighbour_message(self, limit: float) -> str:
        mean = self.edges / self.atoms
        batch = self.config.train.batch_size
        per_batch = mean * self.atoms / max(self.structures, 1) * batch
        count, frame = self.most_neighbours
        return (
            f"cut_off={self.config.cut_off} Å gives {mean:,.0f} neighbours per atom on average "
            f"(up to {count:,} in frame {frame}; max_neighbours_per_atom={limit:g}): "
            f"{self.edges:,} edges in {self.structures:,} structures so far, "
            f"{self.edges * _PACKED_BYTES_PER_EDGE / 1e9:.2f} GB of packed edges, and a batch of {batch} "
            f"structures has about {per_batch:,.0f} edges, {per_batch * 4 * 128 / 1e9:.2f} GB for every "
            "128 float32 features a network keeps per edge. Is the cutoff meant to be this large?"
        )

    # ------------------------------------------------------------------ distances
    def _check_distances(self, table: StructureTable, edges: EdgeArrays, real: np.ndarray) -> None:
        if "distance" in self._warned:
            return
        minimum = float(self.config.min_distance)  # type: ignore[arg-type]
        owner_all = np.repeat(np.arange(table.num_structures), np.diff(edges.edge_ptr))
        close_edges: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        if edges.lengths is not None:  # the neighbour list's own lengths: nothing to recompute
            close_edges.append(np.flatnonzero(real & (edges.lengths < minimum)))
            lengths.append(edges.lengths[close_edges[0]])
        for start in range(0, len(real) if edges.lengths is None else 0, _EDGE_BLOCK):
            block = np.arange(start, min(start + _EDGE_BLOCK, len(real)))[real[start : start + _EDGE_BLOCK]]
            owner = owner_all[block]
            i = edges.edge_index[block, 0].astype(np.int64) + table.atom_ptr[owner]
            j = edges.edge_index[block, 1].astype(np.int64) + table.atom_ptr[owner]
            vectors = table.positions[j] - table.positions[i]
            # only edges to periodic images need the cell (none in a molecule set)
            shifts = edges.shifts[block]
            imaged = np.flatnonzero(shifts.any(axis=1))
            if len(imaged):
                vectors[imaged] += np.einsum("ek,ekd->ed", shifts[imaged].astype(np.float64), table.cell[owner[imaged]])
            squared = np.einsum("ed,ed->e", vectors, vectors)
            hit = squared < minimum * minimum
            close_edges.append(block[hit])
            lengths.append(np.sqrt(squared[hit]))
        close = np.concatenate(close_edges) if close_edges else np.zeros(0, dtype=np.int64)
        if not len(close):
            return
        distance = np.concatenate(lengths)
        first = int(close[0])
        s = int(owner_all[first])
        a, b = (int(x) for x in edges.edge_index[first])
        frames = len(np.unique(owner_all[close]))
        pair = f"atoms {a} and {b}" if a != b else f"atom {a} and its periodic image"
        self._report(
            "distance",
            f"frame {table.frame_id(s)}: {pair} are {distance[0]:.3f} Å apart, closer than "
            f"min_distance={minimum:g} Å ({len(close) // 2 or 1:,} such pair(s) in {frames:,} frame(s) of this "
            "chunk); duplicated atoms or positions in the wrong units?",
        )

    def _report(self, kind: str, message: str) -> None:
        self._warned.add(kind)
        if self.config.input_checks == "error":
            field = "cut_off" if kind == "neighbours" else "positions"
            raise DataError(message + " (datamodule.input_checks='error')", source=self.source, field=field)
        warnings.warn(f"{self.source}: {message}", UserWarning, stacklevel=4)


def _real_edges(edges: EdgeArrays) -> np.ndarray:
    """Edges between two atoms (a self-interaction edge is not a neighbour)."""
    different = edges.edge_index[:, 0] != edges.edge_index[:, 1]
    if not edges.shifts.any():  # molecules only: one flat pass instead of a row-wise any (10x slower)
        return different
    return different | edges.shifts.any(axis=1)
