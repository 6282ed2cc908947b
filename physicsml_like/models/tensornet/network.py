"""TensorNet (Simeon and De Fabritiis 2023, arXiv:2306.06482) on the shared graph contract.

Edges give rank-2 tensor features per atom (embedding), interactions update them with matrix
products of neighbours' and own features, and the squared norms of the final scalar, skew and
symmetric parts are the invariant per-atom features read out as energies and node scalars.
"""

from __future__ import annotations

import torch
from torch import nn

from ...data.statistics import DatasetStatistics
from ...nn.builder import model_builder
from ...nn.graph import (
    OUT_GRAPH_SCALARS,
    OUT_NODE_SCALARS,
    OUT_PER_ATOM_GRAPH_SCALARS,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
)
from ...nn.mlp import MLP, activation
from ...nn.radial import BesselBasis, GaussianBasis, PolynomialCutoff
from .config import TensorNetModelConfig
from .layers import TensorEmbedding, TensorInteraction, decompose, part_norms

__all__ = ["TensorNet", "build_tensornet"]


class TensorNet(AtomisticNetwork):
    """TensorNet with per-atom energy and node-scalar heads.

    Parameters
    ----------
    config: the TensorNet config (cutoff from ``datamodule.cut_off``).
    spec: the heads wanted: graph scalars (as per-atom contributions) and node scalars.
    """

    supported_outputs = frozenset({OUT_GRAPH_SCALARS, OUT_NODE_SCALARS})

    def __init__(self, config: TensorNetModelConfig, spec: OutputSpec) -> None:
        super().__init__(spec)
        if spec.num_edge_features or spec.num_graph_attrs:
            raise ValueError("TensorNet uses neither bond features nor graph attributes: unset datamodule.bond_features / graph_attrs_cols")
        f = config.num_features
        cutoff = config.datamodule.cut_off
        act = config.activation
        if config.radial_basis == "bessel":
            self.radial: nn.Module = BesselBasis(cutoff, config.num_radial, config.bessel_basis_trainable)
        else:
            self.radial = GaussianBasis(cutoff, config.num_radial)
        self.envelope = PolynomialCutoff(cutoff, config.num_polynomial_cutoff)
        self.embedding = TensorEmbedding(spec.num_node_features, f, config.num_radial, act)
        self.layers = nn.ModuleList(
            TensorInteraction(f, config.num_radial, act, config.equivariance) for _ in range(config.num_interaction_layers)
        )
        self.output_norm = nn.LayerNorm(3 * f)
        self.output_linear = nn.Linear(3 * f, f)
        self.output_activation = activation(act)
        readout = [f, max(f // 2, 1)]
        self.energy_head = MLP([*readout, spec.num_graph_scalars], act) if spec.num_graph_scalars else None
        self.node_scalar_head = MLP([*readout, spec.num_node_scalars], act) if spec.num_node_scalars else None

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        """Per-atom outputs.

        Parameters
        ----------
        graph: ``node_attrs [N, F_in]``, ``edge_index [2, E]``, ``edge_vectors [E, 3]``,
            ``edge_lengths [E]``.

        Returns
        -------
        ``OUT_PER_ATOM_GRAPH_SCALARS [N, k]`` and/or ``OUT_NODE_SCALARS [N, m]``.
        """
        lengths = graph.edge_lengths
        unit_vectors = graph.unit_vectors()
        envelope = self.envelope(lengths)
        radial = self.radial(lengths) * envelope.unsqueeze(-1)
        x = self.embedding(graph.node_attrs, graph.edge_index, unit_vectors, radial, envelope)
        for layer in self.layers:
            x = layer(x, graph.edge_index, radial, envelope)
        invariants = torch.cat(part_norms(*decompose(x)), dim=-1)
        h = self.output_activation(self.output_linear(self.output_norm(invariants)))
        out: dict[str, torch.Tensor] = {}
        if self.energy_head is not None:
            out[OUT_PER_ATOM_GRAPH_SCALARS] = self.energy_head(h)
        if self.node_scalar_head is not None:
            out[OUT_NODE_SCALARS] = self.node_scalar_head(h)
        return out

    def architecture(self) -> str:
        return f"features={self.embedding.num_features}, layers={len(self.layers)}"


@model_builder
def build_tensornet(config: TensorNetModelConfig, spec: OutputSpec, statistics: DatasetStatistics) -> TensorNet:
    """The TensorNet network for a config and output spec (seeded, in ``config.model_dtype``)."""
    return TensorNet(config, spec)
