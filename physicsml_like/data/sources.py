"""Readers that turn every supported input into :class:`StructureTable` chunks.

Supported inputs
----------------
- a path to anything ``ase.io`` reads (extended XYZ first; ``.gz`` works), or to a ``.csv`` /
  ``.parquet`` / ``.json`` table read with pandas;
- an ``ase.Atoms`` or a sequence of them;
- a pandas ``DataFrame`` (one row per structure) or a dict of columns;
- a sequence of SMILES strings or RDKit molecules (3D conformers generated, seeded);
- a :class:`StructureTable` (returned as is).

Labels on ``ase.Atoms`` are looked up, in order, in the attached calculator's results, in
``atoms.info`` and in ``atoms.arrays``. Tables name them as columns.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np
import pandas as pd
from ase.stress import voigt_6_to_full_3x3_stress

from ..config.datamodule import DataModuleConfig
from ..errors import DataError
from . import molecules
from .table import LabelRequest, StructureTable
from .tables_io import decode_cell, read_frame, structures_frame, write_frame

__all__ = ["describe_source", "iter_tables", "read_table", "source_fingerprint", "write_structures"]

_TABLE_SUFFIXES = {".csv", ".parquet", ".pq", ".json", ".jsonl"}
_MISSING = object()


def describe_source(data: Any) -> str:
    """A short human name for a data source, used in error messages."""
    if isinstance(data, str | os.PathLike):
        return str(data)
    if isinstance(data, StructureTable):
        return data.source
    if isinstance(data, ase.Atoms):
        return "ase.Atoms"
    if isinstance(data, pd.DataFrame):
        return "DataFrame"
    if isinstance(data, dict):
        return "dict of columns"
    if isinstance(data, Sequence) and len(data) and isinstance(data[0], str):
        return "list of SMILES"
    if isinstance(data, Sequence) and len(data) and isinstance(data[0], ase.Atoms):
        return "list of ase.Atoms"
    if isinstance(data, Sequence) and len(data) and _is_rdkit_mol(data[0]):
        return "list of RDKit molecules"
    return type(data).__name__


def source_fingerprint(data: Any) -> str | None:
    """Identity of a file source (path, size, modification time) without reading it.

    Returns ``None`` for in-memory data, whose identity is the hash of its content.
    """
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {path}")
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return None


def read_table(data: Any, config: DataModuleConfig, *, with_labels: bool = True) -> StructureTable:
    """Read a whole source into one validated table."""
    return StructureTable.concatenate(iter_tables(data, config, with_labels=with_labels))


def write_structures(
    data: Any, path: str | os.PathLike[str], datamodule: DataModuleConfig | dict[str, Any] | None = None
) -> Path:
    """Write any data source as a table file (``.csv``, ``.parquet``, ``.json``) of structures.

    ``datamodule`` (a config or a dict of its fields, e.g. ``{"y_graph_scalars": ["energy"],
    "y_node_vector": "forces"}``) names the labels written with the structures and the columns.
    """
    config = datamodule if isinstance(datamodule, DataModuleConfig) else DataModuleConfig(**(datamodule or {}))
    return write_frame(structures_frame(read_table(data, config), config), path)


def iter_tables(
    data: Any,
    config: DataModuleConfig,
    *,
    with_labels: bool = True,
    chunk_size: int = 20_000,
) -> Iterator[StructureTable]:
    """Yield validated tables of at most ``chunk_size`` structures (streams large files).

    Raises :class:`DataError` for an empty source, and for any bad value naming the frame.
    """
    request = LabelRequest.from_config(config, with_labels=with_labels)
    source = describe_source(data)
    produced = False
    for table in _dispatch(data, config, request, chunk_size, source):
        table.validate()
        produced = True
        yield table
    if not produced:
        raise DataError("the dataset is empty (no structures)", source=source)


def _dispatch(
    data: Any, config: DataModuleConfig, request: LabelRequest, chunk_size: int, source: str
) -> Iterator[StructureTable]:
    if isinstance(data, StructureTable):
        yield data
        return
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"data file not found: {path}")
        if path.suffix.lower() in _TABLE_SUFFIXES:
            yield from _frame_tables(read_frame(path), config, request, chunk_size, source)
        else:
            yield from _atoms_tables(_iread(path), config, request, chunk_size, source)
        return
    if isinstance(data, ase.Atoms):
        data = [data]
    if isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except ValueError as err:
            raise DataError(f"the dict of columns does not make a table: {err}", source=source) from None
    if isinstance(data, pd.DataFrame):
        yield from _frame_tables(data, config, request, chunk_size, source)
        return
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if len(data) == 0:
            return
        first = data[0]
        if isinstance(first, ase.Atoms):
            yield from _atoms_tables(enumerate(data), config, request, chunk_size, source)
            return
        if isinstance(first, str):
            yield from _molecule_tables(
                ((i, s, None) for i, s in enumerate(data)), config, request, chunk_size, source
            )
            return
        if _is_rdkit_mol(first):
            yield from _molecule_tables(
                ((i, None, m) for i, m in enumerate(data)), config, request, chunk_size, source
            )
            return
    raise DataError(
        "unsupported data: give a path, ase.Atoms (or a list of them), a DataFrame, a dict of "
        f"columns, SMILES strings or RDKit molecules (got {type(data).__name__})",
        source=source,
    )


def _is_rdkit_mol(obj: Any) -> bool:
    return type(obj).__name__ == "Mol" and type(obj).__module__.startswith("rdkit")


def _iread(path: Path) -> Iterator[tuple[int, ase.Atoms]]:
    try:
        yield from enumerate(ase.io.iread(str(path), index=":"))
    except DataError:
        raise
    except Exception as err:  # ase.io raises many types for a bad file
        raise DataError(f"could not read the file with ase.io: {err}", source=str(path)) from None


# ---------------------------------------------------------------------------------------------
# shared per-structure label handling


class _LabelCollector:
    """Collects, shape-checks and stores the labels of one chunk of structures."""

    def __init__(self, request: LabelRequest, source: str) -> None:
        self.request = request
        self.source = source
        self.graph: dict[str, list[np.ndarray]] = {name: [] for name in request.graph_names}
        self.node: dict[str, list[np.ndarray]] = {name: [] for name in request.node_names}
        self.edge: dict[str, list[np.ndarray]] = {name: [] for name in request.edge_names}
        self._widths: dict[str, int] = {}

    def _error(self, problem: str, index: int, name: str) -> DataError:
        return DataError(problem, source=self.source, index=index, field=name)

    def _array(self, value: Any, name: str, index: int) -> np.ndarray:
        if value is _MISSING:
            raise self._error(f"label {name!r} is missing", index, name)
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self._error(
                f"{name!r} is not numeric (got {type(value).__name__}: {str(value)[:60]!r})", index, name
            ) from None

    def _width(self, name: str, width: int, index: int) -> None:
        expected = self._widths.setdefault(name, width)
        if expected != width:
            raise self._error(
                f"{name!r} has {width} components here but {expected} in earlier structures", index, name
            )

    def add(self, lookup: Any, n_atoms: int, index: int, n_bonds: int | None = None) -> None:
        """Add the labels of one structure; ``lookup(name)`` returns a value or ``_MISSING``."""
        self._add_graph(lookup, index)
        self._add_node(lookup, n_atoms, index)
        self._add_edge(lookup, n_bonds, index)

    def _add_graph(self, lookup: Any, index: int) -> None:
        req = self.request
        for name in req.graph_scalars:
            value = self._array(lookup(name), name, index)
            if value.size != 1:
                raise self._error(f"{name!r} should be one number per structure, got shape {value.shape}", index, name)
            self.graph[name].append(value.reshape(()))
        for name in req.graph_vectors + req.graph_attrs:
            value = self._array(lookup(name), name, index).reshape(-1)
            self._width(name, value.size, index)
            self.graph[name].append(value)
        if req.stress:
            value = self._array(lookup(req.stress), req.stress, index)
            if value.size == 6:
                value = voigt_6_to_full_3x3_stress(value.reshape(6))
            elif value.size != 9:
                raise self._error(
                    f"stress should have 6 (Voigt) or 9 components, got shape {value.shape}", index, req.stress
                )
            self.graph[req.stress].append(value.reshape(3, 3))

    def _add_node(self, lookup: Any, n_atoms: int, index: int) -> None:
        for name in self.request.node_scalars:
            value = self._array(lookup(name), name, index)
            if value.shape not in {(n_atoms,), (n_atoms, 1)}:
                raise self._error(
                    f"{name!r} has shape {value.shape} but the structure has {n_atoms} atoms "
                    f"(expected ({n_atoms},))",
                    index, name,
                )
            self.node[name].append(value.reshape(n_atoms))
        for name in self.request.node_vectors:
            value = self._array(lookup(name), name, index)
            if value.ndim != 2 or value.shape[0] != n_atoms:
                raise self._error(
                    f"{name!r} has shape {value.shape} but the structure has {n_atoms} atoms "
                    f"(expected ({n_atoms}, 3))",
                    index, name,
                )
            self._width(name, value.shape[1], index)
            self.node[name].append(value)

    def _add_edge(self, lookup: Any, n_bonds: int | None, index: int) -> None:
        for name in self.request.edge_names:
            value = self._array(lookup(name), name, index)
            if n_bonds is None:
                raise self._error(
                    "edge labels are given per bond and need molecule inputs with bonds "
                    "(SMILES, RDKit molecules or a table with a SMILES column)",
                    index, name,
                )
            if value.shape[:1] != (n_bonds,):
                raise self._error(f"{name!r} has shape {value.shape} but the molecule has {n_bonds} bonds", index, name)
            self.edge[name].append(value)


def _resolve_cell_pbc(
    cell: np.ndarray | None, pbc: np.ndarray | None, config: DataModuleConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the config's ``cell``/``pbc`` to structures that carry none."""
    if config.cell is None and config.pbc is None and cell is not None and pbc is not None:
        # nothing to apply: the structure's own (the common case, checked without numpy calls)
        return np.asarray(cell, dtype=np.float64).reshape(3, 3), np.asarray(pbc, dtype=bool).reshape(3)
    if cell is None or not np.any(cell):
        if config.cell is not None:
            cell = np.asarray(config.cell, dtype=np.float64)
            if pbc is None or not np.any(pbc):
                pbc = np.asarray(config.pbc if config.pbc is not None else (True, True, True))
        else:
            cell = np.zeros((3, 3))
    if pbc is None:
        if config.pbc is not None:
            pbc = np.asarray(config.pbc, dtype=bool)
        else:
            pbc = np.full(3, bool(np.any(cell)))
    return np.asarray(cell, dtype=np.float64).reshape(3, 3), np.asarray(pbc, dtype=bool).reshape(3)


class _ChunkBuilder:
    """Per-structure arrays of one chunk, flushed into a :class:`StructureTable`."""

    def __init__(self, request: LabelRequest, source: str, with_molecules: bool) -> None:
        self.request = request
        self.source = source
        self.with_molecules = with_molecules
        self.reset()

    def reset(self) -> None:
        self.numbers: list[np.ndarray] = []
        self.positions: list[np.ndarray] = []
        self.cells: list[np.ndarray] = []
        self.pbcs: list[np.ndarray] = []
        self.rows: list[int] = []
        self.features: list[np.ndarray] = []
        self.bonds: list[np.ndarray] = []
        self.bond_attrs: list[np.ndarray] = []
        self.labels = _LabelCollector(self.request, self.source)

    def __len__(self) -> int:
        return len(self.rows)

    def add_structure(
        self, numbers: Any, positions: Any, cell: np.ndarray, pbc: np.ndarray, row: int
    ) -> int:
        if (type(numbers) is np.ndarray and numbers.dtype == np.int64 and numbers.ndim == 1
                and type(positions) is np.ndarray and positions.dtype == np.float64
                and positions.shape == (len(numbers), 3)):
            # already what the table holds (ase.Atoms' own arrays): skip the conversions, which
            # were a fifth of reading ethanol frames
            z, pos = numbers, positions
        else:
            z, pos = self._checked(numbers, positions, row)
        self.numbers.append(z)
        self.positions.append(pos)
        self.cells.append(cell)
        self.pbcs.append(pbc)
        self.rows.append(row)
        return len(z)

    def _checked(self, numbers: Any, positions: Any, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Atomic numbers and positions as int64 ``[n]`` and float64 ``[n, 3]``, or an error
        naming the row and field."""
        z = np.asarray(numbers)
        if z.dtype.kind == "f" and z.size and np.all(z == np.round(z)):
            z = z.astype(np.int64)  # tables often store integers as floats
        if z.ndim != 1 or (z.size and not np.issubdtype(z.dtype, np.integer)):
            raise DataError(
                f"atomic numbers must be a list of integers, got shape {z.shape} dtype {z.dtype}",
                source=self.source, index=row, field="atomic_numbers",
            )
        try:
            pos = np.asarray(positions, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("coordinates are not numeric", source=self.source, index=row, field="coordinates") from None
        if pos.ndim == 1 and pos.size == 3 * len(z):
            pos = pos.reshape(-1, 3)
        if pos.shape != (len(z), 3):
            raise DataError(
                f"coordinates have shape {pos.shape} but there are {len(z)} atomic numbers "
                f"(expected ({len(z)}, 3))",
                source=self.source, index=row, field="coordinates",
            )
        return z, pos

    def flush(self) -> StructureTable:
        table = StructureTable.from_lists(
            numbers=self.numbers,
            positions=self.positions,
            cells=self.cells,
            pbcs=self.pbcs,
            graph_labels=self.labels.graph,
            node_labels=self.labels.node,
            row_ids=self.rows,
            source=self.source,
            atom_features=self.features if self.with_molecules else None,
            bonds=self.bonds if self.with_molecules else None,
            bond_attrs=self.bond_attrs if self.with_molecules else None,
            bond_labels=self.labels.edge if self.with_molecules else None,
        )
        self.reset()
        return table


def _needs_molecules(config: DataModuleConfig, request: LabelRequest) -> bool:
    """Whether the structures need their RDKit molecule (atom/bond features, bonds).

    A model with edge targets predicts on bonds, so its graphs hold the bonds even when no
    label is read (``predict``): the edge targets of the config count, not only the request.
    """
    edge_targets = bool(config.y_edge_scalars or config.y_edge_vector)
    return bool(config.atom_features) or config.bond_features or edge_targets or bool(request.edge_names)


# ---------------------------------------------------------------------------------------------
# ase.Atoms


def _atoms_lookup(atoms: ase.Atoms) -> Any:
    results = getattr(atoms.calc, "results", None) or {}
    info = atoms.info
    arrays = atoms.arrays

    def lookup(name: str) -> Any:
        if name in results:
            return results[name]
        if name in info:
            return info[name]
        if name in arrays:
            return arrays[name]
        return _MISSING

    return lookup


def _atoms_tables(
    frames: Iterable[tuple[int, ase.Atoms]],
    config: DataModuleConfig,
    request: LabelRequest,
    chunk_size: int,
    source: str,
) -> Iterator[StructureTable]:
    if _needs_molecules(config, request):
        raise DataError(
            "atom features, bond features and edge labels need molecule inputs (SMILES, RDKit "
            "molecules or a table with a SMILES column); ase.Atoms carry no bonds",
            source=source,
        )
    plain_request = not (request.graph_vectors or request.stress or request.graph_attrs or request.edge_names)
    if config.cell is None and config.pbc is None and plain_request:
        for items in _batched(frames, chunk_size):
            # the per-frame reader below checks every value and names what is wrong; a chunk
            # that passes the bulk path's checks needs none of that
            table = _plain_atoms_table(items, request, source)
            yield table if table is not None else next(_checked_atoms_tables(iter(items), config, request, len(items), source))
        return
    yield from _checked_atoms_tables(iter(frames), config, request, chunk_size, source)


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _plain_atoms_table(items: list[tuple[int, ase.Atoms]], request: LabelRequest, source: str) -> StructureTable | None:
    """A chunk of ase.Atoms read in bulk, when every frame is plain: int64 atomic numbers,
    float64 ``[n, 3]`` positions, one number per graph-scalar label and ``[n]``/``[n, 3]`` node
    labels. ``None`` when any frame is not, and the checked reader handles the chunk.

    Per frame this is a few attribute reads (the checked reader costs several times more); with
    it, graph building of 600 ethanol frames takes less CPU time than the bare per-structure
    matscipy calls on arrays prepared beforehand (``benchmarks/data_pipeline.py --building-only``).
    """
    frames = [atoms for _, atoms in items]
    if not all(type(a) is ase.Atoms for a in frames):
        return None
    arrays = [a.arrays for a in frames]
    numbers = [a["numbers"] for a in arrays]
    positions = [a["positions"] for a in arrays]
    if not all(z.dtype == np.int64 and p.dtype == np.float64 for z, p in zip(numbers, positions, strict=True)):
        return None
    lookups = [_atoms_lookup(a) for a in frames]
    graph: dict[str, list[Any]] = {}
    for name in request.graph_scalars:
        values = [lookup(name) for lookup in lookups]
        if not all(type(v) is float or (type(v) is np.ndarray and v.size == 1) or type(v) is np.float64 for v in values):
            return None
        graph[name] = values
    node: dict[str, list[np.ndarray]] = {}
    for name in request.node_scalars + request.node_vectors:
        values = [lookup(name) for lookup in lookups]
        vector = name in request.node_vectors
        if not all(type(v) is np.ndarray and v.dtype.kind == "f" and v.shape == ((len(z), 3) if vector else (len(z),))
                   for v, z in zip(values, numbers, strict=True)):
            return None
        node[name] = values
    return StructureTable.from_lists(
        numbers=numbers,
        positions=positions,
        cells=[a.cell.array for a in frames],
        pbcs=[a.pbc for a in frames],
        graph_labels={k: [v.reshape(()) if type(v) is np.ndarray else v for v in vs] for k, vs in graph.items()},
        node_labels=node,
        row_ids=[index for index, _ in items],
        source=source,
    )


def _checked_atoms_tables(
    frames: Iterator[tuple[int, ase.Atoms]],
    config: DataModuleConfig,
    request: LabelRequest,
    chunk_size: int,
    source: str,
) -> Iterator[StructureTable]:
    """ase.Atoms read frame by frame, every value checked (errors name the frame and field)."""
    chunk = _ChunkBuilder(request, source, with_molecules=False)
    for index, atoms in frames:
        if not isinstance(atoms, ase.Atoms):
            raise DataError(f"expected ase.Atoms, got {type(atoms).__name__}", source=source, index=index)
        cell, pbc = _resolve_cell_pbc(atoms.cell.array, atoms.pbc, config)
        n = chunk.add_structure(atoms.numbers, atoms.positions, cell, pbc, index)
        try:
            chunk.labels.add(_atoms_lookup(atoms), n, index)
        except DataError as err:
            if err.problem.endswith("is missing"):
                available = sorted(
                    set((getattr(atoms.calc, "results", None) or {}).keys())
                    | set(atoms.info)
                    | (set(atoms.arrays) - {"numbers", "positions"})
                )
                raise DataError(
                    f"label {err.field!r} is missing (available: {available})",
                    source=source, index=index, field=err.field,
                ) from None
            raise
        if len(chunk) >= chunk_size:
            yield chunk.flush()
    if len(chunk):
        yield chunk.flush()


# ---------------------------------------------------------------------------------------------
# DataFrames


def _frame_tables(
    frame: pd.DataFrame,
    config: DataModuleConfig,
    request: LabelRequest,
    chunk_size: int,
    source: str,
) -> Iterator[StructureTable]:
    """A table with coordinates is read row by row; one with only SMILES embeds conformers."""
    if _check_frame_columns(list(frame.columns), config, request, source):
        yield from _coordinate_frame_tables(frame, config, request, chunk_size, source)
        return
    smiles = frame[config.smiles_col].tolist()
    yield from _molecule_tables(
        ((i, s, None) for i, s in enumerate(smiles)),
        config,
        request,
        chunk_size,
        source,
        row_lookup=lambda i, name: _decoded(frame[name].iat[i], name, i, source),
    )


def _check_frame_columns(
    columns: list[str], config: DataModuleConfig, request: LabelRequest, source: str
) -> bool:
    """Raise :class:`DataError` naming the first missing column; whether there are coordinates."""
    missing = [name for name in request.graph_names + request.node_names + request.edge_names if name not in columns]
    if missing:
        raise DataError(
            f"column {missing[0]!r} not found (columns: {columns})", source=source, field=missing[0]
        )
    has_coords = config.coordinates_col in columns
    if not has_coords and config.smiles_col not in columns:
        raise DataError(
            f"the table has neither a {config.coordinates_col!r} nor a {config.smiles_col!r} column "
            f"(columns: {columns}); set coordinates_col / smiles_col",
            source=source,
        )
    if has_coords and config.atomic_numbers_col not in columns:
        raise DataError(
            f"column {config.atomic_numbers_col!r} not found (columns: {columns})",
            source=source, field=config.atomic_numbers_col,
        )
    return has_coords


def _optional_column(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    return frame[name].to_numpy() if name in frame.columns else None


def _decoded(value: Any, name: str, row: int, source: str) -> Any:
    """A table cell with its stored array decoded (JSON text in CSV, list columns in Parquet)."""
    try:
        return decode_cell(value, name)
    except DataError as err:
        raise DataError(err.problem, source=source, index=row, field=name) from None


def _row_cell_pbc(
    cell_col: np.ndarray | None, pbc_col: np.ndarray | None, row: int, config: DataModuleConfig, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """The cell and pbc of one table row (the config's where the row gives none)."""
    cell = _decoded(cell_col[row], config.cell_col, row, source) if cell_col is not None else None
    if cell is not None:
        try:
            cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        except (TypeError, ValueError):
            raise DataError("cell must be 3x3 or 9 numbers", source=source, index=row, field=config.cell_col) from None
    pbc = _decoded(pbc_col[row], config.pbc_col, row, source) if pbc_col is not None else None
    if pbc is not None:
        try:
            pbc = np.asarray(pbc, dtype=bool).reshape(3)
        except (TypeError, ValueError):
            raise DataError("pbc must be 3 booleans", source=source, index=row, field=config.pbc_col) from None
    return _resolve_cell_pbc(cell, pbc, config)


def _attach_row_molecule(chunk: _ChunkBuilder, smiles: str, row: int, config: DataModuleConfig, source: str) -> int:
    """Atom and bond features of a row's SMILES, whose atoms must match the row's; the bond count."""
    mol = molecules.molecule_from_smiles(smiles, index=row, source=source)
    mol = molecules.embed_molecule(mol, config.conformer, index=row, source=source)
    z_mol = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    if not np.array_equal(z_mol, chunk.numbers[-1]):
        raise DataError(
            "the atoms of the SMILES (with hydrogens, RDKit order) do not match the "
            "atomic numbers of the row, so atom/bond features cannot be attached",
            source=source, index=row, field=config.smiles_col,
        )
    return _add_molecule_features(chunk, mol, config)


def _coordinate_frame_tables(
    frame: pd.DataFrame,
    config: DataModuleConfig,
    request: LabelRequest,
    chunk_size: int,
    source: str,
) -> Iterator[StructureTable]:
    with_molecules = _needs_molecules(config, request)
    if with_molecules and config.smiles_col not in frame.columns:
        raise DataError(
            f"atom/bond features and edge labels need a {config.smiles_col!r} column",
            source=source,
        )
    chunk = _ChunkBuilder(request, source, with_molecules=with_molecules)
    numbers_col = frame[config.atomic_numbers_col].to_numpy()
    coords_col = frame[config.coordinates_col].to_numpy()
    cell_col = _optional_column(frame, config.cell_col)
    pbc_col = _optional_column(frame, config.pbc_col)
    label_cols = {name: frame[name].to_numpy() for name in request.graph_names + request.node_names + request.edge_names}
    for row in range(len(frame)):
        cell, pbc = _row_cell_pbc(cell_col, pbc_col, row, config, source)
        numbers = _decoded(numbers_col[row], config.atomic_numbers_col, row, source)
        coordinates = _decoded(coords_col[row], config.coordinates_col, row, source)
        n = chunk.add_structure(numbers, coordinates, cell, pbc, row)
        n_bonds = None
        if with_molecules:
            n_bonds = _attach_row_molecule(chunk, frame[config.smiles_col].iat[row], row, config, source)

        def lookup(name: str, _row: int = row) -> Any:
            return _decoded(label_cols[name][_row], name, _row, source)

        chunk.labels.add(lookup, n, row, n_bonds=n_bonds)
        if len(chunk) >= chunk_size:
            yield chunk.flush()
    if len(chunk):
        yield chunk.flush()


# ---------------------------------------------------------------------------------------------
# SMILES and RDKit molecules


def _add_molecule_features(chunk: _ChunkBuilder, mol: Any, config: DataModuleConfig) -> int:
    chunk.features.append(molecules.atom_feature_matrix(mol, config.atom_features or []))
    bonds, attrs = molecules.bond_arrays(mol)
    chunk.bonds.append(bonds)
    chunk.bond_attrs.append(attrs)
    return len(bonds)


def _molecule_tables(
    items: Iterable[tuple[int, str | None, Any]],
    config: DataModuleConfig,
    request: LabelRequest,
    chunk_size: int,
    source: str,
    row_lookup: Any = None,
) -> Iterator[StructureTable]:
    chunk = _ChunkBuilder(request, source, with_molecules=True)
    for index, smiles, mol in items:
        if mol is None:
            mol = molecules.molecule_from_smiles(smiles, index=index, source=source)  # type: ignore[arg-type]
        elif not _is_rdkit_mol(mol):
            raise DataError(f"expected an RDKit molecule, got {type(mol).__name__}", source=source, index=index)
        mol = molecules.embed_molecule(mol, config.conformer, index=index, source=source)
        numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
        positions = mol.GetConformer().GetPositions()
        cell, pbc = _resolve_cell_pbc(None, None, config)
        n = chunk.add_structure(numbers, positions, cell, pbc, index)
        n_bonds = _add_molecule_features(chunk, mol, config)
        if row_lookup is not None:
            def lookup(name: str, _i: int = index) -> Any:
                return row_lookup(_i, name)
        else:
            lookup = _mol_lookup(mol)
        chunk.labels.add(lookup, n, index, n_bonds=n_bonds)
        if len(chunk) >= chunk_size:
            yield chunk.flush()
    if len(chunk):
        yield chunk.flush()


def _mol_lookup(mol: Any) -> Any:
    """Labels on an RDKit molecule: molecule properties, then per-atom and per-bond properties."""

    def lookup(name: str) -> Any:
        if mol.HasProp(name):
            return mol.GetDoubleProp(name)
        atoms = list(mol.GetAtoms())
        if atoms and all(a.HasProp(name) for a in atoms):
            return [a.GetDoubleProp(name) for a in atoms]
        bonds = list(mol.GetBonds())
        if bonds and all(b.HasProp(name) for b in bonds):
            return [b.GetDoubleProp(name) for b in bonds]
        return _MISSING

    return lookup


def content_hash(table: StructureTable) -> str:
    """A digest of every array of a table (identity of in-memory data for caches)."""
    digest = hashlib.blake2b(digest_size=16)
    arrays: list[tuple[str, np.ndarray | None]] = [
        ("atomic_numbers", table.atomic_numbers),
        ("positions", table.positions),
        ("atom_ptr", table.atom_ptr),
        ("cell", table.cell),
        ("pbc", table.pbc),
        ("atom_features", table.atom_features),
        ("bond_index", table.bond_index),
        ("bond_ptr", table.bond_ptr),
        ("bond_attrs", table.bond_attrs),
    ]
    arrays += sorted(("g:" + k, v) for k, v in table.graph_labels.items())
    arrays += sorted(("n:" + k, v) for k, v in table.node_labels.items())
    arrays += sorted(("b:" + k, v) for k, v in table.bond_labels.items())
    for name, array in arrays:
        digest.update(name.encode())
        if array is not None:
            a = np.ascontiguousarray(array)
            digest.update(str((a.dtype.str, a.shape)).encode())
            digest.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return digest.hexdigest()
