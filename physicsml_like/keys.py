"""Names of the fields a graph carries: defined once here, imported everywhere else.

A graph (one structure) or a batch (many, collated the torch-geometric way) holds these keys.
Graph-level fields are stored with a leading dimension of 1 per structure so that
concatenation gives ``[num_graphs, ...]``; node-level fields are ``[num_nodes, ...]``; edge-level
fields are ``[num_edges, ...]``; ``edge_index`` is ``[2, num_edges]``.

Edge convention: an edge ``(i, j)`` with integer image shift ``S`` carries the vector
``r_ij = pos[j] - pos[i] + S @ cell``. ``edge_index[0]`` is ``i`` (the centre) and
``edge_index[1]`` is ``j`` (the neighbour); neighbour lists are symmetric so every ``(i, j, S)``
comes with ``(j, i, -S)``.
"""

from __future__ import annotations

__all__ = [
    "ATOMIC_NUMBERS",
    "BATCH",
    "CELL",
    "CELL_SHIFT",
    "EDGE_ATTRS",
    "EDGE_INDEX",
    "EDGE_KEYS",
    "EDGE_LABEL_MASK",
    "GRAPH_ATTRS",
    "GRAPH_KEYS",
    "NODE_ATTRS",
    "NODE_KEYS",
    "PBC",
    "POSITIONS",
    "PTR",
    "SPECIES",
    "Y_EDGE_SCALARS",
    "Y_EDGE_VECTOR",
    "Y_GRAPH_SCALARS",
    "Y_GRAPH_VECTOR",
    "Y_NODE_SCALARS",
    "Y_NODE_VECTOR",
    "Y_STRESS",
]

# node level
ATOMIC_NUMBERS = "atomic_numbers"  # [N] int64, raw Z
SPECIES = "species"  # [N] int64, index of Z in the element mapping
NODE_ATTRS = "node_attrs"  # [N, F] float, one-hot over elements then optional RDKit features
POSITIONS = "positions"  # [N, 3] float64, unwrapped Cartesian coordinates (Å)
Y_NODE_SCALARS = "y_node_scalars"  # [N, k]
Y_NODE_VECTOR = "y_node_vector"  # [N, d] (forces: d = 3)

# edge level
EDGE_INDEX = "edge_index"  # [2, E] int64
CELL_SHIFT = "cell_shift"  # [E, 3] float, integer multiples of the cell vectors
EDGE_ATTRS = "edge_attrs"  # [E, F_e] float, bond features (zeros on non-bonded edges)
Y_EDGE_SCALARS = "y_edge_scalars"  # [E, k]
Y_EDGE_VECTOR = "y_edge_vector"  # [E, d]
EDGE_LABEL_MASK = "edge_label_mask"  # [E] bool, edges that carry an edge label

# graph level
CELL = "cell"  # [B, 3, 3] float64, rows are the lattice vectors
PBC = "pbc"  # [B, 3] bool
GRAPH_ATTRS = "graph_attrs"  # [B, k] float
Y_GRAPH_SCALARS = "y_graph_scalars"  # [B, k]
Y_GRAPH_VECTOR = "y_graph_vector"  # [B, d]
Y_STRESS = "y_stress"  # [B, 3, 3], ASE sign convention (positive under tension)

# batch bookkeeping (added by collation)
BATCH = "batch"  # [N] int64, graph index of each node
PTR = "ptr"  # [B + 1] int64, node offsets

NODE_KEYS = frozenset({ATOMIC_NUMBERS, SPECIES, NODE_ATTRS, POSITIONS, Y_NODE_SCALARS, Y_NODE_VECTOR})
EDGE_KEYS = frozenset({CELL_SHIFT, EDGE_ATTRS, Y_EDGE_SCALARS, Y_EDGE_VECTOR, EDGE_LABEL_MASK})
GRAPH_KEYS = frozenset({CELL, PBC, GRAPH_ATTRS, Y_GRAPH_SCALARS, Y_GRAPH_VECTOR, Y_STRESS})
