"""From a data source to packed graphs, in memory or in an on-disk cache.

Sources are read in chunks of structures, each chunk gets its neighbour lists and is packed;
chunks are then joined in RAM (``in_memory`` and ``None``) or streamed into a cache folder
(``on_disk``) so that building a cache never holds the whole dataset in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..config.datamodule import DataModuleConfig
from .cache import CACHE_FORMAT_VERSION, CacheWriter, MappedArrays, open_cache
from .checks import InputChecks
from .graphs import PTR_ARRAYS, pack_graphs
from .neighbours import build_edges, warn_isolated_atoms
from .sources import content_hash, describe_source, iter_tables, source_fingerprint
from .table import StructureTable, join_offsets

__all__ = ["build_graphs", "cache_key", "graph_chunks", "open_or_build_cache"]

# settings that change the packed graphs (batch sizes, shuffling etc. do not)
_GRAPH_SETTINGS = (
    "y_graph_scalars", "y_graph_vector", "y_node_scalars", "y_node_vector", "y_edge_scalars",
    "y_edge_vector", "y_stress", "graph_attrs_cols", "atom_features", "bond_features", "cut_off",
    "pbc", "cell", "self_interaction", "atomic_numbers_col", "coordinates_col", "cell_col",
    "pbc_col", "smiles_col", "conformer",
)


def graph_chunks(
    data: Any, config: DataModuleConfig, *, with_labels: bool, chunk_size: int = 5000, progress: bool = True
) -> Iterator[dict[str, np.ndarray]]:
    """Packed arrays of consecutive chunks of a source (offsets local to each chunk)."""
    with_bonds = bool(config.bond_features or config.y_edge_scalars or config.y_edge_vector)
    source = describe_source(data)
    isolated, first_isolated = 0, -1
    checks = InputChecks(config, source)
    # the bar appears only for work that takes more than a couple of seconds
    bar = tqdm(desc=f"graphs ({source})", unit=" structures", disable=not progress, delay=2.0, leave=False)
    try:
        for table in iter_tables(data, config, with_labels=with_labels, chunk_size=chunk_size):
            edges = build_edges(table, config.cut_off, config.self_interaction, with_bonds=with_bonds)
            checks.add(table, edges)
            if edges.isolated_atoms and first_isolated < 0:
                first_isolated = edges.first_isolated_frame
            isolated += edges.isolated_atoms
            bar.update(table.num_structures)
            yield pack_graphs(table, edges, config, with_labels)
    finally:
        bar.close()
    warn_isolated_atoms(isolated, first_isolated, config.cut_off, source)


def concatenate_packed(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join packed chunks; offset arrays are shifted to stay global."""
    if len(chunks) == 1:
        return chunks[0]
    out: dict[str, np.ndarray] = {}
    for name in chunks[0]:
        parts = [chunk[name] for chunk in chunks]
        out[name] = join_offsets(parts) if name in PTR_ARRAYS else np.concatenate(parts)
    return out


def build_graphs(data: Any, config: DataModuleConfig, *, with_labels: bool, progress: bool = True) -> dict[str, np.ndarray]:
    """All packed graphs of a source, in RAM."""
    return concatenate_packed(list(graph_chunks(data, config, with_labels=with_labels, progress=progress)))


def cache_key(identity: str, config: DataModuleConfig, with_labels: bool) -> str:
    """Hash of the data identity and every setting that shapes the packed graphs."""
    settings = {name: config.model_dump(mode="json")[name] for name in _GRAPH_SETTINGS}
    blob = json.dumps(
        {"format": CACHE_FORMAT_VERSION, "data": identity, "labels": with_labels, "settings": settings},
        sort_keys=True,
    )
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def open_or_build_cache(
    data: Any, config: DataModuleConfig, *, with_labels: bool, progress: bool = True
) -> MappedArrays:
    """Open the cache of ``data`` under ``config.cache_dir``, building it first when absent,
    stale or damaged. Files are keyed by (path, size, mtime); in-memory data by content."""
    cache_dir = config.resolved_cache_dir()
    fingerprint = source_fingerprint(data)
    table: StructureTable | None = None
    if fingerprint is None:
        table = StructureTable.concatenate(iter_tables(data, config, with_labels=with_labels))
        fingerprint = "content:" + content_hash(table)
    key = cache_key(fingerprint, config, with_labels)
    path = cache_dir / key
    cached = open_cache(path, verify=config.verify_cache)
    if cached is not None:
        return cached
    metadata = {"source": describe_source(data), "with_labels": with_labels}
    with CacheWriter(cache_dir, key, metadata) as writer:
        for chunk in graph_chunks(table if table is not None else data, config, with_labels=with_labels, progress=progress):
            writer.append(chunk)
        committed: Path = writer.commit()
    return MappedArrays(committed)


def array_bytes(arrays: Mapping[str, np.ndarray]) -> int:
    """Total bytes of packed arrays (what a split costs in RAM when held in memory)."""
    return int(sum(np.asarray(a).nbytes for a in arrays.values()))
