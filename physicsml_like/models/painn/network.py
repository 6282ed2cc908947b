"""PaiNN (Schütt, Unke and Gastegger 2021, arXiv:2102.03150) on the shared graph contract.

Scalars start from the element embedding and vectors at zero; each interaction adds a message
(from neighbours, weighted by radial filters with a smooth envelope) and an atom-wise update.
Energies and node scalars are read from the scalars; node vectors and the parts of a dipole
(per-atom charges ``q_i`` and atomic dipoles ``mu_i``, which :func:`~physicsml_like.nn.readout.dipole_moment`
sums to ``sum_i q_i (r_i - centroid) + mu_i``) from gated equivariant blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from ...data.statistics import DatasetStatistics
from ...nn.builder import model_builder
from ...nn.graph import (
    OUT_ATOMIC_DIPOLES,
    OUT_CHARGES,
    OUT_GRAPH_SCALARS,
    OUT_GRAPH_VECTOR,
    OUT_NODE_SCALARS,
    OUT_NODE_VECTOR,
    OUT_PER_ATOM_GRAPH_SCALARS,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
)
from ...nn.mlp import MLP
from ...nn.radial import BesselBasis, PolynomialCutoff
from .config import PaiNNModelConfig
from .layers import GatedEquivariantBlock, PaiNNMessage, PaiNNUpdate

__all__ = ["PaiNN", "build_painn"]


def _gated_readout(num_features: int, scalars_out: int, act: str) -> nn.ModuleList:
    """Two gated equivariant blocks: ``F`` channels -> ``F/2`` -> ``scalars_out`` scalars and one vector."""
    half = max(num_features // 2, 1)
    return nn.ModuleList([
        GatedEquivariantBlock(num_features, num_features, half, half, num_features, act, scalar_activation=True),
        GatedEquivariantBlock(half, half, scalars_out, 1, half, act, scalar_activation=False),
    ])


class PaiNN(AtomisticNetwork):
    """PaiNN with heads for energies, node scalars, node vectors and a dipole.

    Parameters
    ----------
    config: the PaiNN config (cutoff from ``datamodule.cut_off``).
    spec: the heads wanted.
    """

    supported_outputs = frozenset({OUT_GRAPH_SCALARS, OUT_NODE_SCALARS, OUT_NODE_VECTOR, OUT_GRAPH_VECTOR})

    def __init__(self, config: PaiNNModelConfig, spec: OutputSpec) -> None:
        super().__init__(spec)
        if spec.num_edge_features or spec.num_graph_attrs:
            raise ValueError("PaiNN uses neither bond features nor graph attributes: unset datamodule.bond_features / graph_attrs_cols")
        f = config.num_features
        act = config.activation
        cutoff = config.datamodule.cut_off
        self.num_features = f
        self.num_interactions = config.num_layers
        self.embedding = nn.Linear(spec.num_node_features, f)
        self.radial = BesselBasis(cutoff, config.num_bessel, config.bessel_basis_trainable)
        self.envelope = PolynomialCutoff(cutoff, config.num_polynomial_cutoff)
        num_filters = 1 if config.shared_filters else config.num_layers
        num_blocks = 1 if config.shared_interactions else config.num_layers
        self.filters = nn.ModuleList(nn.Linear(config.num_bessel, 3 * f) for _ in range(min(num_filters, config.num_layers)))
        self.messages = nn.ModuleList(PaiNNMessage(f, act) for _ in range(min(num_blocks, config.num_layers)))
        self.updates = nn.ModuleList(PaiNNUpdate(f, act) for _ in range(min(num_blocks, config.num_layers)))
        readout = [f, max(f // 2, 1)]
        self.energy_head = MLP([*readout, spec.num_graph_scalars], act) if spec.num_graph_scalars else None
        self.node_scalar_head = MLP([*readout, spec.num_node_scalars], act) if spec.num_node_scalars else None
        self.node_vector_head = _gated_readout(f, 1, act) if spec.node_vector_dim else None
        self.dipole_head = _gated_readout(f, 1, act) if spec.graph_vector_dim else None

    def features(self, graph: AtomicGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """Scalar ``[N, F]`` and vector ``[N, 3, F]`` features after every interaction."""
        lengths = graph.edge_lengths
        unit_vectors = graph.unit_vectors()
        envelope = self.envelope(lengths).unsqueeze(-1)
        radial = self.radial(lengths)
        s = self.embedding(graph.node_attrs)
        v = s.new_zeros((s.shape[0], 3, self.num_features))
        filters = [layer(radial) * envelope for layer in self.filters]
        for k in range(self.num_interactions):
            message = self.messages[k % len(self.messages)]
            update = self.updates[k % len(self.updates)]
            ds, dv = message(s, v, graph.edge_index, filters[k % len(filters)], unit_vectors)
            s, v = s + ds, v + dv
            ds, dv = update(s, v)
            s, v = s + ds, v + dv
        return s, v

    @staticmethod
    def _gated(blocks: nn.ModuleList, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in blocks:
            s, v = block(s, v)
        return s, v.squeeze(-1)

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        """Outputs for a batch.

        Parameters
        ----------
        graph: ``node_attrs [N, F_in]``, ``positions [N, 3]``, ``edge_index [2, E]``,
            ``edge_vectors [E, 3]``, ``edge_lengths [E]``, ``batch [N]``.

        Returns
        -------
        Those requested of ``OUT_PER_ATOM_GRAPH_SCALARS [N, k]``, ``OUT_NODE_SCALARS [N, m]``,
        ``OUT_NODE_VECTOR [N, 3]``, and for a dipole ``OUT_CHARGES [N, 1]`` and
        ``OUT_ATOMIC_DIPOLES [N, 3]``.
        """
        s, v = self.features(graph)
        out: dict[str, torch.Tensor] = {}
        if self.energy_head is not None:
            out[OUT_PER_ATOM_GRAPH_SCALARS] = self.energy_head(s)
        if self.node_scalar_head is not None:
            out[OUT_NODE_SCALARS] = self.node_scalar_head(s)
        if self.node_vector_head is not None:
            out[OUT_NODE_VECTOR] = self._gated(self.node_vector_head, s, v)[1]
        if self.dipole_head is not None:
            out[OUT_CHARGES], out[OUT_ATOMIC_DIPOLES] = self._gated(self.dipole_head, s, v)
        return out

    def architecture(self) -> str:
        return (
            f"features={self.num_features}, interactions={self.num_interactions}, "
            f"filter sets={len(self.filters)}, block sets={len(self.messages)}"
        )


@model_builder
def build_painn(config: PaiNNModelConfig, spec: OutputSpec, statistics: DatasetStatistics) -> PaiNN:
    """The PaiNN network for a config and output spec (seeded, in ``config.model_dtype``)."""
    return PaiNN(config, spec)
