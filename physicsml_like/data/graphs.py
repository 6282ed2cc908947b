"""Packed graphs: every structure's graph stored as a few concatenated arrays.

One layout serves all three batching modes. ``in_memory`` keeps the arrays in RAM, ``on_disk``
memory-maps the same arrays from a cache folder, and ``None`` turns each structure into a
torch-geometric ``Data`` once and lets PyG collate them. A batch drawn from packed arrays is
built by index arithmetic (no Python loop over structures) and equals, key for key, what
``Batch.from_data_list`` makes from the per-structure ``Data`` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from .. import keys as K
from ..config.datamodule import DataModuleConfig
from ..errors import DataError
from .neighbours import EdgeArrays, concatenated_ranges
from .table import StructureTable

__all__ = ["ElementMapping", "GraphBatcher", "pack_graphs"]

# which packed arrays are per node, per edge and per structure
NODE_ARRAYS = ("atomic_numbers", "positions", "atom_features", K.Y_NODE_SCALARS, K.Y_NODE_VECTOR)
EDGE_ARRAYS = ("edge_index", "cell_shift", "edge_attrs", K.Y_EDGE_SCALARS, K.Y_EDGE_VECTOR, K.EDGE_LABEL_MASK)
GRAPH_ARRAYS = ("cell", "pbc", K.Y_GRAPH_SCALARS, K.Y_GRAPH_VECTOR, K.Y_STRESS, K.GRAPH_ATTRS, "row_ids")
PTR_ARRAYS = ("atom_ptr", "edge_ptr")


def _stack_columns(columns: list[np.ndarray], rows: int) -> np.ndarray:
    parts = [c.reshape(rows, -1) for c in columns]
    return np.concatenate(parts, axis=1) if parts else np.zeros((rows, 0))


def pack_graphs(table: StructureTable, edges: EdgeArrays, config: DataModuleConfig, with_labels: bool) -> dict[str, np.ndarray]:
    """The packed arrays of a table and its edges; labels stacked in config order."""
    out = _input_arrays(table, edges, config)
    if with_labels:
        out.update(_label_arrays(table, edges, config))
    return out


def _input_arrays(table: StructureTable, edges: EdgeArrays, config: DataModuleConfig) -> dict[str, np.ndarray]:
    """Structure, neighbour-list and input-feature arrays (what prediction needs)."""
    out: dict[str, np.ndarray] = {
        "atomic_numbers": table.atomic_numbers.astype(np.int16, copy=False),
        "positions": table.positions,
        "atom_ptr": table.atom_ptr,
        "edge_index": edges.edge_index,
        "cell_shift": edges.shifts,
        "edge_ptr": edges.edge_ptr,
        "cell": table.cell,
        "pbc": table.pbc,
        "row_ids": table.row_ids,
    }
    if config.atom_features:
        assert table.atom_features is not None
        out["atom_features"] = table.atom_features
    if config.bond_features and edges.bond_attrs is not None:
        out["edge_attrs"] = edges.bond_attrs
    if config.graph_attrs_cols:
        out[K.GRAPH_ATTRS] = _stack_columns([table.graph_labels[c] for c in config.graph_attrs_cols], table.num_structures)
    return out


def _label_arrays(table: StructureTable, edges: EdgeArrays, config: DataModuleConfig) -> dict[str, np.ndarray]:
    """The label arrays the config asks for; edge labels come with the mask of labelled edges."""
    s, n, e = table.num_structures, table.num_atoms, len(edges.edge_index)
    out: dict[str, np.ndarray] = {}
    if config.y_graph_scalars:
        out[K.Y_GRAPH_SCALARS] = _stack_columns([table.graph_labels[c] for c in config.y_graph_scalars], s)
    if config.y_graph_vector:
        out[K.Y_GRAPH_VECTOR] = table.graph_labels[config.y_graph_vector].reshape(s, -1)
    if config.y_stress:
        out[K.Y_STRESS] = table.graph_labels[config.y_stress].reshape(s, 3, 3)
    if config.y_node_scalars:
        out[K.Y_NODE_SCALARS] = _stack_columns([table.node_labels[c] for c in config.y_node_scalars], n)
    if config.y_node_vector:
        out[K.Y_NODE_VECTOR] = table.node_labels[config.y_node_vector].reshape(n, -1)
    if config.y_edge_scalars or config.y_edge_vector:
        assert edges.labels is not None and edges.label_mask is not None
        if config.y_edge_scalars:
            out[K.Y_EDGE_SCALARS] = _stack_columns([edges.labels[c] for c in config.y_edge_scalars], e)
        if config.y_edge_vector:
            out[K.Y_EDGE_VECTOR] = edges.labels[config.y_edge_vector].reshape(e, -1)
        out[K.EDGE_LABEL_MASK] = edges.label_mask
    return out


@dataclass(frozen=True)
class ElementMapping:
    """Atomic number -> one-hot slot.

    Either a compact list of elements (slot = position in the list) or, as in physicsml, a
    one-hot over the raw atomic number with ``num_elements`` slots.
    """

    elements: tuple[int, ...] | None = None
    num_elements: int | None = None

    def __post_init__(self) -> None:
        if (self.elements is None) == (self.num_elements is None):
            raise ValueError("give exactly one of elements / num_elements")

    @property
    def size(self) -> int:
        return len(self.elements) if self.elements is not None else int(self.num_elements)  # type: ignore[arg-type]

    def lookup_table(self) -> np.ndarray:
        """``[119]`` int64: slot of each Z, -1 when Z is not mapped."""
        lut = np.full(119, -1, dtype=np.int64)
        if self.elements is not None:
            lut[list(self.elements)] = np.arange(len(self.elements))
        else:
            top = min(int(self.num_elements), 119)  # type: ignore[arg-type]
            lut[:top] = np.arange(top)
        return lut

    def check(self, atomic_numbers: np.ndarray, source: str, row_ids: np.ndarray | None = None,
              atom_ptr: np.ndarray | None = None) -> None:
        """Raise :class:`DataError` naming the first element (and frame) outside the mapping."""
        lut = self.lookup_table()
        present = np.flatnonzero(np.bincount(atomic_numbers.astype(np.int64), minlength=119))
        unmapped = [int(z) for z in present if lut[z] < 0]
        if not unmapped:
            return
        from ase.data import chemical_symbols

        z = unmapped[0]
        index = None
        if atom_ptr is not None:
            first_atom = int(np.argmax(atomic_numbers == z))
            structure = int(np.searchsorted(atom_ptr, first_atom, side="right") - 1)
            index = int(row_ids[structure]) if row_ids is not None and len(row_ids) else structure
        known = [chemical_symbols[x] for x in self.elements] if self.elements else f"Z < {self.num_elements}"
        raise DataError(
            f"element {chemical_symbols[z]} (Z={z}) is not in the element mapping {known}",
            source=source,
            index=index,
            field="atomic_numbers",
        )

    def to_dict(self) -> dict[str, object]:
        return {"elements": list(self.elements) if self.elements else None, "num_elements": self.num_elements}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ElementMapping:
        elements = cast("Iterable[int] | None", data.get("elements"))
        return cls(
            elements=tuple(int(z) for z in elements) if elements else None,
            num_elements=data.get("num_elements"),  # type: ignore[arg-type]
        )


_Rows = np.ndarray | slice
# optional per-level arrays a batch carries when the packed arrays have them: (level, array, batch key)
_OPTIONAL_FIELDS = (
    ("node", K.Y_NODE_SCALARS, K.Y_NODE_SCALARS),
    ("node", K.Y_NODE_VECTOR, K.Y_NODE_VECTOR),
    ("edge", "edge_attrs", K.EDGE_ATTRS),
    ("edge", K.Y_EDGE_SCALARS, K.Y_EDGE_SCALARS),
    ("edge", K.Y_EDGE_VECTOR, K.Y_EDGE_VECTOR),
    ("edge", K.EDGE_LABEL_MASK, K.EDGE_LABEL_MASK),
    ("graph", K.Y_GRAPH_SCALARS, K.Y_GRAPH_SCALARS),
    ("graph", K.Y_GRAPH_VECTOR, K.Y_GRAPH_VECTOR),
    ("graph", K.Y_STRESS, K.Y_STRESS),
)


def _take(array: np.ndarray, rows: _Rows) -> np.ndarray:
    """Rows of an array; index arrays already copy (a batch)."""
    return array[rows]


def _take_copy(array: np.ndarray, rows: _Rows) -> np.ndarray:
    """Rows of an array as a copy (a slice would otherwise share, or map, the packed memory)."""
    return np.array(array[rows])


class GraphBatcher:
    """Turns packed arrays (in RAM or memory-mapped) into torch-geometric batches.

    Parameters
    ----------
    arrays: the packed arrays of :func:`pack_graphs` (numpy arrays or memory maps).
    mapping: the element mapping of the one-hot node attributes.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], mapping: ElementMapping) -> None:
        self.arrays = arrays
        self.mapping = mapping
        self._lut = mapping.lookup_table()
        self._eye = np.eye(mapping.size, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.arrays["atom_ptr"]) - 1

    def _node_attrs(self, atomic_numbers: np.ndarray, atom_rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        species = self._lut[atomic_numbers]
        attrs = self._eye[species]
        features = self.arrays.get("atom_features")
        if features is not None:
            attrs = np.concatenate([attrs, features[atom_rows]], axis=1)
        return species, attrs

    def _optional_fields(
        self, atom_rows: _Rows, edge_rows: _Rows, graph_rows: _Rows, take: Callable[[np.ndarray, _Rows], np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """The labels and optional inputs present in the packed arrays, at the given rows."""
        a = self.arrays
        rows = {"node": atom_rows, "edge": edge_rows, "graph": graph_rows}
        fields = {key: torch.from_numpy(take(a[name], rows[level])) for level, name, key in _OPTIONAL_FIELDS if name in a}
        if K.GRAPH_ATTRS in a:
            fields[K.GRAPH_ATTRS] = torch.from_numpy(a[K.GRAPH_ATTRS][graph_rows].astype(np.float32))
        return fields

    def gather(self, indices: np.ndarray) -> Batch:
        """The batch of the structures ``indices`` (in that order)."""
        a = self.arrays
        indices = np.asarray(indices, dtype=np.int64)
        atom_ptr, edge_ptr = a["atom_ptr"], a["edge_ptr"]
        a0 = atom_ptr[indices]
        n_atoms = atom_ptr[indices + 1] - a0
        e0 = edge_ptr[indices]
        n_edges = edge_ptr[indices + 1] - e0
        atom_rows = concatenated_ranges(a0, n_atoms)
        edge_rows = concatenated_ranges(e0, n_edges)
        b = len(indices)
        node_start = np.zeros(b, dtype=np.int64)
        np.cumsum(n_atoms[:-1], out=node_start[1:])
        edge_index = a["edge_index"][edge_rows].astype(np.int64) + np.repeat(node_start, n_edges)[:, None]

        z = a["atomic_numbers"][atom_rows].astype(np.int64)
        species, node_attrs = self._node_attrs(z, atom_rows)
        ptr = np.zeros(b + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(n_atoms)
        fields: dict[str, torch.Tensor] = {
            K.ATOMIC_NUMBERS: torch.from_numpy(z),
            K.SPECIES: torch.from_numpy(species),
            K.NODE_ATTRS: torch.from_numpy(node_attrs),
            K.POSITIONS: torch.from_numpy(a["positions"][atom_rows]),
            K.EDGE_INDEX: torch.from_numpy(np.ascontiguousarray(edge_index.T)),
            K.CELL_SHIFT: torch.from_numpy(a["cell_shift"][edge_rows].astype(np.float64)),
            K.CELL: torch.from_numpy(a["cell"][indices]),
            K.PBC: torch.from_numpy(a["pbc"][indices]),
            K.BATCH: torch.from_numpy(np.repeat(np.arange(b, dtype=np.int64), n_atoms)),
            K.PTR: torch.from_numpy(ptr),
        }
        fields.update(self._optional_fields(atom_rows, edge_rows, indices, _take))
        batch = Batch(**fields)
        batch._num_graphs = b
        return batch

    def get(self, index: int) -> Data:
        """Structure ``index`` as a single torch-geometric ``Data`` (graph fields ``[1, ...]``)."""
        a = self.arrays
        a0, a1 = int(a["atom_ptr"][index]), int(a["atom_ptr"][index + 1])
        e0, e1 = int(a["edge_ptr"][index]), int(a["edge_ptr"][index + 1])
        z = a["atomic_numbers"][a0:a1].astype(np.int64)
        species, node_attrs = self._node_attrs(z, slice(a0, a1))
        fields: dict[str, torch.Tensor] = {
            K.ATOMIC_NUMBERS: torch.from_numpy(z),
            K.SPECIES: torch.from_numpy(species),
            K.NODE_ATTRS: torch.from_numpy(np.ascontiguousarray(node_attrs)),
            K.POSITIONS: torch.from_numpy(np.array(a["positions"][a0:a1])),
            K.EDGE_INDEX: torch.from_numpy(np.ascontiguousarray(a["edge_index"][e0:e1].astype(np.int64).T)),
            K.CELL_SHIFT: torch.from_numpy(a["cell_shift"][e0:e1].astype(np.float64)),
            K.CELL: torch.from_numpy(np.array(a["cell"][index : index + 1])),
            K.PBC: torch.from_numpy(np.array(a["pbc"][index : index + 1])),
        }
        fields.update(self._optional_fields(slice(a0, a1), slice(e0, e1), slice(index, index + 1), _take_copy))
        data = Data(**fields)
        data.num_nodes = a1 - a0
        return data
