"""Data layer: sources -> structure table -> neighbour lists -> packed graphs -> batches."""

from .build import build_graphs, open_or_build_cache
from .datamodule import GraphDataModule
from .graphs import ElementMapping, GraphBatcher, pack_graphs
from .neighbours import build_edges, neighbour_list
from .sampler import EpochBatchSampler
from .sources import iter_tables, read_table, write_structures
from .statistics import DatasetStatistics, compute_statistics
from .table import LabelRequest, StructureTable

__all__ = [
    "DatasetStatistics",
    "ElementMapping",
    "EpochBatchSampler",
    "GraphBatcher",
    "GraphDataModule",
    "LabelRequest",
    "StructureTable",
    "build_edges",
    "build_graphs",
    "compute_statistics",
    "iter_tables",
    "neighbour_list",
    "open_or_build_cache",
    "pack_graphs",
    "read_table",
    "write_structures",
]
