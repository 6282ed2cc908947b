"""The contract between the shared training module and a family's network.

The training module turns a batch into an :class:`AtomicGraph` (edge vectors already computed
from positions, cell shifts and a strain, so forces and stress follow by autograd) and asks the
network for the heads listed in an :class:`OutputSpec`. A network returns a dict whose keys are
the ``OUT_*`` constants below; it declares which it can produce in ``supported_outputs`` and an
unsupported request raises a ``ValueError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

__all__ = [
    "OUT_ATOMIC_DIPOLES",
    "OUT_CHARGES",
    "OUT_EDGE_SCALARS",
    "OUT_EDGE_VECTOR",
    "OUT_GRAPH_SCALARS",
    "OUT_GRAPH_VECTOR",
    "OUT_NODE_SCALARS",
    "OUT_NODE_VECTOR",
    "OUT_PER_ATOM_GRAPH_SCALARS",
    "AtomicGraph",
    "AtomisticNetwork",
    "OutputSpec",
    "neighbour_normalisation",
    "reset_submodules",
]

# what a network may return (dimensionless, before the training module's scale and shift)
OUT_PER_ATOM_GRAPH_SCALARS = "per_atom_graph_scalars"  # [N, k]: pooled by the training module
OUT_GRAPH_SCALARS = "graph_scalars"  # [B, k]: already pooled by the network
OUT_NODE_SCALARS = "node_scalars"  # [N, k]
OUT_NODE_VECTOR = "node_vector"  # [N, d] (only when not derived as forces)
OUT_GRAPH_VECTOR = "graph_vector"  # [B, d], e.g. a dipole; must rotate with the structure
# a graph-vector request may instead be met by these two per-atom parts, which the dipole readout
# (nn.readout.dipole_moment) turns into sum_i q_i (r_i - centroid) + mu_i
OUT_CHARGES = "charges"  # [N, 1] per-atom charges
OUT_ATOMIC_DIPOLES = "atomic_dipoles"  # [N, 3] per-atom dipoles (rotate with the structure)
OUT_EDGE_SCALARS = "edge_scalars"  # [E, k]
OUT_EDGE_VECTOR = "edge_vector"  # [E, d]


@dataclass
class AtomicGraph:
    """Inputs of a network for one batch (tensors in the model dtype).

    node_attrs: ``[N, F]`` one-hot elements (+ optional atom features).
    species: ``[N]`` one-hot slot of each atom.
    positions: ``[N, 3]`` (strained when stress is computed).
    edge_index: ``[2, E]``; ``edge_vectors[e] = positions[j] - positions[i] + shift @ cell``.
    edge_vectors: ``[E, 3]``; edge_lengths: ``[E]``.
    batch: ``[N]`` graph of each atom; num_graphs: ``B``.
    edge_attrs: ``[E, F_e]`` bond features or ``None``; graph_attrs: ``[B, F_g]`` or ``None``.
    """

    node_attrs: torch.Tensor
    species: torch.Tensor
    positions: torch.Tensor
    edge_index: torch.Tensor
    edge_vectors: torch.Tensor
    edge_lengths: torch.Tensor
    batch: torch.Tensor
    num_graphs: int
    edge_attrs: torch.Tensor | None = None
    graph_attrs: torch.Tensor | None = None

    @property
    def num_nodes(self) -> int:
        # the shape itself, not int(...) of it: under torch.jit.trace it stays a traced size, so
        # a traced network serves structures of any size
        return self.node_attrs.shape[0]

    def unit_vectors(self) -> torch.Tensor:
        """``[E, 3]`` edge directions; a zero-length (self-interaction) edge has no direction, so
        its unit vector is zero."""
        lengths = self.edge_lengths
        safe = torch.where(lengths > 0, lengths, torch.ones_like(lengths))
        return self.edge_vectors / safe.unsqueeze(-1) * (lengths > 0).unsqueeze(-1).to(lengths.dtype)


@dataclass(frozen=True)
class OutputSpec:
    """Which heads a network must build and how wide its inputs are.

    A count of 0 means the head is not wanted. ``node_vector_dim`` is non-zero only when a node
    vector is predicted directly (forces, when computed, come from the energy instead).
    """

    num_elements: int
    num_node_features: int
    num_edge_features: int = 0
    num_graph_attrs: int = 0
    num_graph_scalars: int = 0
    graph_vector_dim: int = 0
    num_node_scalars: int = 0
    node_vector_dim: int = 0
    num_edge_scalars: int = 0
    edge_vector_dim: int = 0

    def requested(self) -> dict[str, int]:
        """Output field -> width, for the heads that are wanted."""
        wanted = {
            OUT_GRAPH_SCALARS: self.num_graph_scalars,
            OUT_GRAPH_VECTOR: self.graph_vector_dim,
            OUT_NODE_SCALARS: self.num_node_scalars,
            OUT_NODE_VECTOR: self.node_vector_dim,
            OUT_EDGE_SCALARS: self.num_edge_scalars,
            OUT_EDGE_VECTOR: self.edge_vector_dim,
        }
        return {k: v for k, v in wanted.items() if v}


def neighbour_normalisation(given: float | None, measured: float) -> float:
    """The mean neighbour count that a family divides its neighbour sums by (or by its root).

    ``given`` is the config's ``avg_num_neighbours`` (``None``: not set), ``measured`` the
    training data's mean number of edges per atom. Never below 1, so that the sums of a sparse
    structure (a dimer, a data set without edges) are not scaled up.

    Examples
    --------
    >>> neighbour_normalisation(None, 7.85), neighbour_normalisation(12.0, 7.85), neighbour_normalisation(None, 0.0)
    (7.85, 12.0, 1.0)
    """
    return max(float(measured if given is None else given), 1.0)


def reset_submodules(module: nn.Module) -> None:
    """Draw every weight below ``module`` again from its initial distribution.

    A child with its own ``reset_parameters`` owns its subtree (it is reset once, as it
    chooses); the children of any other child are visited in turn. Parameters of a module
    without ``reset_parameters`` (e3nn's layers, for example) keep their values.
    """
    for child in module.children():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
        else:
            reset_submodules(child)


class AtomisticNetwork(nn.Module):
    """Base of every family's network: declares its outputs and checks a spec against them.

    ``supported_outputs`` lists the ``OUT_*`` fields the family can produce; graph scalars may
    come as per-atom contributions (``OUT_PER_ATOM_GRAPH_SCALARS``) or pooled
    (``OUT_GRAPH_SCALARS``), both satisfying a graph-scalar request. A graph-vector request
    (a dipole) is met by ``OUT_CHARGES`` and ``OUT_ATOMIC_DIPOLES``, which the training module
    turns into the dipole, or by ``OUT_GRAPH_VECTOR`` directly. Graph scalars are pooled as
    ``config.pool_type`` says by whoever pools them (the training module, or the network for a
    head over pooled features).
    """

    supported_outputs: ClassVar[frozenset[str]] = frozenset({OUT_GRAPH_SCALARS})
    compiled_training_defect: ClassVar[str | None] = None
    """Why ``compile_training`` is refused for this family (a known compiler defect), if it is."""

    def __init__(self, spec: OutputSpec) -> None:
        super().__init__()
        self.spec = spec
        for field, width in spec.requested().items():
            if field not in self.supported_outputs:
                raise ValueError(
                    f"{type(self).__name__} cannot predict {field!r} (asked for width {width}); "
                    f"it supports {sorted(self.supported_outputs)}"
                )

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Draw every weight again from its initial distribution (see :func:`reset_submodules`),
        then give the heads the start they were built with (:meth:`_initialise_heads`)."""
        reset_submodules(self)
        self._initialise_heads()

    def _initialise_heads(self) -> None:
        """Hook for heads that start from particular values (EGNN's energy head starts at zero);
        a network that has such heads calls it at the end of its constructor too."""

    @property
    def num_trainable_weights(self) -> int:
        """Values the optimiser updates (``requires_grad`` parameters), as families report them."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def architecture(self) -> str:
        """The family's shape in a few words (layers, widths, ...), the first part of the repr."""
        return ""

    def extra_repr(self) -> str:
        heads = ", ".join(f"{k}={v}" for k, v in self.spec.requested().items())
        parts = [self.architecture(), f"heads: {heads}", f"{self.num_trainable_weights} trainable weights"]
        return " | ".join(part for part in parts if part)
