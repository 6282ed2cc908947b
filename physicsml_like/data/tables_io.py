"""Tables of structures in CSV, Parquet and JSON files: one column format, both directions.

A row is a structure. Scalars are plain cells. Arrays (atomic numbers, coordinates, cell, pbc,
forces, predictions per atom, ...) are nested lists: JSON text in a CSV cell, list columns in
Parquet and JSON. :func:`write_frame` writes that format and :func:`decode_cell` reads it back
(the readers of :mod:`physicsml_like.data.sources` call it on every cell), so a table written by
:func:`~physicsml_like.data.sources.write_structures` or ``physicsml-like predict -o`` reads back with the same arrays.

Examples
--------
>>> import json
>>> decode_cell(json.dumps([[0.0, 0.0, 0.0], [0.0, 0.0, 1.1]]), "coordinates").shape
(2, 3)
>>> encode_cell(np.eye(2), text=True)
'[[1.0, 0.0], [0.0, 1.0]]'
"""

from __future__ import annotations

import ast
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.datamodule import DataModuleConfig
from ..errors import DataError
from .table import StructureTable

__all__ = [
    "PARQUET_INSTALL",
    "MissingDependencyError",
    "decode_cell",
    "encode_cell",
    "read_frame",
    "require_pyarrow",
    "structures_frame",
    "write_frame",
]

PARQUET_INSTALL = 'pip install "physicsml_like[parquet]"'
_PARQUET = {".parquet", ".pq"}
_WRITABLE = {".csv", ".json", ".jsonl", *_PARQUET}


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require_pyarrow() -> None:
    """Raise :class:`MissingDependencyError` naming the ``parquet`` extra when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"Parquet files need pyarrow: {PARQUET_INSTALL}") from None


# ------------------------------------------------------------------ cells
def decode_cell(value: Any, name: str = "value") -> Any:
    """An array stored in a table cell as a numpy array; other values unchanged.

    Text holding a JSON (or Python) list is parsed, as CSV stores lists; nested object arrays,
    as Parquet gives list columns, are stacked. An empty cell (``None``, NaN) gives ``None``.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith(("[", "(")):
            return value
        try:
            return np.asarray(json.loads(text))
        except ValueError:
            pass
        try:  # Python reprs: True/False in pbc, tuples
            return np.asarray(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            raise DataError(
                f"the cell holds text that is not a JSON list: {text[:60]!r} (arrays in a CSV cell are "
                "JSON lists, as written by physicsml_like.data.tables_io.write_frame)",
                field=name,
            ) from None
    if isinstance(value, np.ndarray) and value.dtype == object:
        parts = [decode_cell(v, name) for v in value]
        return np.stack([np.asarray(p) for p in parts]) if parts else np.zeros(0)
    if isinstance(value, list):
        return np.asarray(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def encode_cell(value: Any, *, text: bool) -> Any:
    """A cell for writing: arrays as nested lists (JSON text when ``text``), scalars unchanged."""
    if isinstance(value, np.ndarray | list | tuple):
        nested = np.asarray(value).tolist()
        return json.dumps(nested) if text else nested
    if isinstance(value, np.generic):
        return value.item()
    return value


# ------------------------------------------------------------------ files
def read_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``.csv``, ``.parquet`` / ``.pq``, ``.json`` or ``.jsonl`` table as a DataFrame."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        require_pyarrow()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in _PARQUET:
            return pd.read_parquet(path)
        return pd.read_json(path, lines=suffix == ".jsonl")
    except Exception as err:  # pandas raises many types; name the file whatever it is
        raise DataError(f"could not read the table: {err}", source=str(path)) from None


def write_frame(frame: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False) -> Path:
    """Write ``frame`` by the suffix of ``path`` in the column format above; returns the path.

    Written under a temporary name and renamed, so an interrupted write leaves no file that
    reads as complete. ``index`` also writes the DataFrame's index (as a column in CSV).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITABLE:
        raise ValueError(f"{path}: unknown table suffix {suffix!r}; use one of {sorted(_WRITABLE)}")
    if suffix in _PARQUET:
        require_pyarrow()
    encoded = frame.copy()
    for column in encoded.columns:
        if encoded[column].dtype == object:
            encoded[column] = [encode_cell(v, text=suffix == ".csv") for v in encoded[column]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        if suffix == ".csv":
            encoded.to_csv(tmp, index=index)
        elif suffix in _PARQUET:
            encoded.to_parquet(tmp, index=index)
        else:
            encoded.to_json(tmp, orient="records", lines=suffix == ".jsonl", index=index if index else None)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ------------------------------------------------------------------ structures
def structures_frame(table: StructureTable, config: DataModuleConfig | None = None) -> pd.DataFrame:
    """One row per structure of ``table``: atomic numbers, coordinates, cell, pbc and labels,
    under the column names of ``config`` (the defaults without one), as the readers expect."""
    config = config or DataModuleConfig()
    ptr = table.atom_ptr
    atoms = [slice(int(ptr[s]), int(ptr[s + 1])) for s in range(table.num_structures)]
    columns: dict[str, Any] = {
        config.atomic_numbers_col: [table.atomic_numbers[a].astype(np.int64) for a in atoms],
        config.coordinates_col: [table.positions[a] for a in atoms],
    }
    if table.pbc.any() or table.cell.any():
        columns[config.cell_col] = list(table.cell)
        columns[config.pbc_col] = list(table.pbc)
    for name, values in table.graph_labels.items():
        columns[name] = values if values.ndim == 1 else list(values)
    for name, values in table.node_labels.items():
        columns[name] = [values[a] for a in atoms]
    return pd.DataFrame(columns)


# ------------------------------------------------------------------ predictions
def predictions_frame(
    result: dict[str, Any], data: Any = None, keep_columns: list[str] | tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Predictions as one row per structure, aligned with the input so ``df.join(pred)`` works.

    A DataFrame input gives its index to the rows; ``keep_columns`` copies those input columns
    (ids, SMILES, ...) in front of the predictions, from a DataFrame or a table file. Vectors and
    per-atom values are arrays in their cells.
    """
    columns: dict[str, Any] = {}
    for name, values in result.items():
        columns[name] = values if isinstance(values, np.ndarray) and values.ndim == 1 else list(values)
    frame = pd.DataFrame(columns)
    source = data if isinstance(data, pd.DataFrame) else None
    if keep_columns and source is None:
        if not (isinstance(data, str | os.PathLike) and Path(data).suffix.lower() in _WRITABLE):
            raise ValueError("keep_columns needs a DataFrame or a table file (.csv, .parquet, .json) as data")
        source = read_frame(data)
    if source is None:
        return frame
    if len(source) != len(frame):
        raise ValueError(f"{len(frame)} predictions for {len(source)} input rows")
    frame.index = source.index
    keep = list(keep_columns or ())
    missing = [c for c in keep if c not in source.columns]
    if missing:
        raise ValueError(f"keep_columns: column {missing[0]!r} is not in the data (columns: {list(source.columns)})")
    clash = [c for c in keep if c in frame.columns]
    if clash:
        raise ValueError(f"keep_columns: {clash[0]!r} is also the name of a prediction")
    return pd.concat([source[keep], frame], axis=1) if keep else frame
