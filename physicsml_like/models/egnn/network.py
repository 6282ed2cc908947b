"""EGNN (Satorras et al. 2021, arXiv:2102.09844) with a smooth cutoff envelope.

Messages ``m_ij = phi_e(h_i, h_j, rbf(r_ij), |r_ij|^2, a_ij) * u(r_ij)`` vanish smoothly at the
cutoff (``u`` is a polynomial envelope), node features update as ``h_i + phi_h(h_i, sum_j m_ij)``
and, optionally, coordinates as ``x_i + sum_j (x_i - x_j) phi_x(m_ij)``. Scalars depend only on
distances, vectors are sums of edge vectors: E(3)-equivariant by construction.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ...data.statistics import DatasetStatistics
from ...nn.builder import model_builder
from ...nn.graph import (
    OUT_ATOMIC_DIPOLES,
    OUT_CHARGES,
    OUT_EDGE_SCALARS,
    OUT_EDGE_VECTOR,
    OUT_GRAPH_SCALARS,
    OUT_GRAPH_VECTOR,
    OUT_NODE_SCALARS,
    OUT_NODE_VECTOR,
    OUT_PER_ATOM_GRAPH_SCALARS,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
    neighbour_normalisation,
    reset_submodules,
)
from ...nn.mlp import MLP, activation
from ...nn.radial import BesselBasis, PolynomialCutoff
from ...nn.readout import pool
from ...nn.scatter import scatter_sum
from .config import EGNNModelConfig

__all__ = ["EGNN", "EGNNLayer", "build_egnn"]


class EGNNLayer(nn.Module):
    """One E(n)-equivariant message-passing layer.

    Shapes: ``h [N, c]``, ``edge_vectors [E, 3]``, ``radial [E, R]``, ``envelope [E]``,
    ``edge_attrs [E, F_e]`` -> ``h [N, c]``, ``edge_vectors [E, 3]``, ``messages [E, c]``.
    """

    def __init__(
        self,
        c_hidden: int,
        num_radial: int,
        num_edge_features: int,
        num_layers_phi: int,
        norm: float,
        *,
        act: str | None,
        output_act: str | None,
        dropout: float | None,
        attention: bool,
        modify_coords: bool,
        residual: bool,
    ) -> None:
        super().__init__()
        self.c_hidden = c_hidden
        self.norm = float(norm)
        self.residual = residual
        edge_in = 2 * c_hidden + num_radial + 1 + num_edge_features
        self.phi_e = MLP([edge_in] + [c_hidden] * num_layers_phi, act, dropout, output_activation=output_act or act)
        self.phi_h = MLP([2 * c_hidden] + [c_hidden] * num_layers_phi, act, dropout, output_activation=output_act)
        self.phi_att = nn.Sequential(nn.Linear(c_hidden, 1), nn.Sigmoid()) if attention else None
        self.phi_x = MLP([c_hidden, c_hidden, 1], act) if modify_coords else None
        self._small_coordinate_updates()

    def _small_coordinate_updates(self) -> None:
        """Start near the identity: small coordinate updates."""
        if self.phi_x is not None:
            nn.init.xavier_uniform_(cast(nn.Linear, self.phi_x[-1]).weight, gain=1e-3)

    def reset_parameters(self) -> None:
        reset_submodules(self)
        self._small_coordinate_updates()

    def forward(
        self,
        h: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        edge_attrs: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, j = edge_index
        squared = (edge_vectors * edge_vectors).sum(-1, keepdim=True) * envelope.unsqueeze(-1)
        parts = [h[i], h[j], radial, squared]
        if edge_attrs is not None:
            parts.append(edge_attrs)
        messages = self.phi_e(torch.cat(parts, dim=-1)) * envelope.unsqueeze(-1)
        if self.phi_att is not None:
            messages = messages * self.phi_att(messages)
        aggregated = scatter_sum(messages, i, h.shape[0]) / self.norm
        update = self.phi_h(torch.cat([h, aggregated], dim=-1))
        h = h + update if self.residual else update
        if self.phi_x is not None:
            # x_i += sum_j (x_i - x_j) phi_x(m_ij); edge vectors follow the moved atoms
            weight = self.phi_x(messages) * envelope.unsqueeze(-1)
            displacement = scatter_sum(-edge_vectors * weight, i, h.shape[0]) / self.norm
            edge_vectors = edge_vectors + displacement[j] - displacement[i]
        return h, edge_vectors, messages

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        return (
            f"hidden={self.c_hidden}, attention={self.phi_att is not None}, "
            f"modify_coords={self.phi_x is not None}, residual={self.residual} | {weights} weights"
        )


class EGNN(AtomisticNetwork):
    """EGNN with heads for every target kind.

    ``graph.node_attrs [N, F]`` and edge geometry -> dimensionless outputs (see
    :mod:`physicsml_like.nn.graph`); scales and reference energies are the training module's.
    """

    supported_outputs = frozenset(
        {OUT_GRAPH_SCALARS, OUT_GRAPH_VECTOR, OUT_NODE_SCALARS, OUT_NODE_VECTOR, OUT_EDGE_SCALARS, OUT_EDGE_VECTOR}
    )

    def __init__(self, config: EGNNModelConfig, spec: OutputSpec, avg_num_neighbours: float) -> None:
        super().__init__(spec)
        c = config.c_hidden
        act = config.mlp_activation
        cutoff = config.datamodule.cut_off
        self.pool_type = config.pool_type  # of the pooled head's inputs
        self.pool_from = config.pool_from
        self.jitter = config.jitter
        self.embedding = nn.Linear(spec.num_node_features, c)
        self.radial = BesselBasis(cutoff, config.num_rbf, config.bessel_basis_trainable) if config.num_rbf else None
        self.envelope = PolynomialCutoff(cutoff, config.num_polynomial_cutoff)
        norm = avg_num_neighbours
        self.layers = nn.ModuleList(
            EGNNLayer(
                c, config.num_rbf, spec.num_edge_features, config.num_layers_phi, norm,
                act=act, output_act=config.mlp_output_activation, dropout=config.dropout,
                attention=config.attention, modify_coords=config.modify_coords, residual=config.residual,
            )
            for _ in range(config.num_layers)
        )
        self.norm = norm
        head = [c] * config.num_layers_pooling
        self.output_activation = activation(config.output_activation)
        self.per_atom_head = None
        self.pooled_head = None
        if spec.num_graph_scalars:
            if config.pool_from == "nodes" and not spec.num_graph_attrs:
                self.per_atom_head = MLP(head + [spec.num_graph_scalars], act, config.dropout)
            else:
                width = c * (config.pool_from in ("nodes", "nodes_edges")) + c * (config.pool_from in ("edges", "nodes_edges"))
                self.pooled_head = MLP([width + spec.num_graph_attrs] + head[1:] + [c, spec.num_graph_scalars], act, config.dropout)
        self.node_scalar_head = MLP(head + [spec.num_node_scalars], act, config.dropout) if spec.num_node_scalars else None
        self.charge_head = MLP(head + [1], act, config.dropout) if spec.graph_vector_dim else None
        self.edge_weight_head = MLP([c, c, 1], act) if spec.node_vector_dim or spec.graph_vector_dim else None
        self.edge_scalar_head = MLP([c, c, spec.num_edge_scalars], act, config.dropout) if spec.num_edge_scalars else None
        self.edge_vector_head = MLP([c, c, 1], act) if spec.edge_vector_dim else None
        self._initialise_heads()

    def _initialise_heads(self) -> None:
        # an untrained model should predict the training mean (reference energies and shift),
        # not a random offset: the energy head starts at zero
        for energy_head in (self.per_atom_head, self.pooled_head):
            if energy_head is not None:
                last = cast(nn.Linear, energy_head[-1])
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        edge_vectors = graph.edge_vectors
        i, j = graph.edge_index
        if self.training and self.jitter:
            noise = torch.randn_like(graph.positions) * self.jitter
            edge_vectors = edge_vectors + noise[j] - noise[i]
        lengths = torch.linalg.norm(edge_vectors, dim=-1)
        envelope = self.envelope(lengths)
        radial = self.radial(lengths) * envelope.unsqueeze(-1) if self.radial is not None else lengths.new_zeros((lengths.shape[0], 0))
        h = self.embedding(graph.node_attrs)
        messages = h.new_zeros((lengths.shape[0], h.shape[1]))
        for layer in self.layers:
            h, edge_vectors, messages = layer(h, graph.edge_index, edge_vectors, radial, envelope, graph.edge_attrs)
        out: dict[str, torch.Tensor] = {}
        n_graphs = graph.num_graphs
        if self.per_atom_head is not None:
            out[OUT_PER_ATOM_GRAPH_SCALARS] = self.output_activation(self.per_atom_head(h))
        if self.pooled_head is not None:
            parts = []
            if self.pool_from in ("nodes", "nodes_edges"):
                parts.append(pool(h, graph.batch, n_graphs, self.pool_type))
            if self.pool_from in ("edges", "nodes_edges"):
                parts.append(pool(messages, graph.batch[i], n_graphs, self.pool_type) / self.norm)
            if graph.graph_attrs is not None:
                parts.append(graph.graph_attrs)
            out[OUT_GRAPH_SCALARS] = self.output_activation(self.pooled_head(torch.cat(parts, dim=-1)))
        if self.node_scalar_head is not None:
            out[OUT_NODE_SCALARS] = self.output_activation(self.node_scalar_head(h))
        if self.edge_weight_head is not None:
            weighted = edge_vectors * self.edge_weight_head(messages) * envelope.unsqueeze(-1)
            node_vectors = scatter_sum(weighted, i, h.shape[0]) / self.norm
            if self.spec.node_vector_dim:
                out[OUT_NODE_VECTOR] = node_vectors
            if self.charge_head is not None:
                # the parts of a dipole: per-atom charges and atomic dipoles
                out[OUT_CHARGES] = self.charge_head(h)
                out[OUT_ATOMIC_DIPOLES] = node_vectors
        if self.edge_scalar_head is not None:
            out[OUT_EDGE_SCALARS] = self.output_activation(self.edge_scalar_head(messages))
        if self.edge_vector_head is not None:
            out[OUT_EDGE_VECTOR] = edge_vectors * self.edge_vector_head(messages)
        return out

    def architecture(self) -> str:
        pooled = f", pooled head: {self.pool_type} of {self.pool_from}" if self.pooled_head is not None else ""
        return f"layers={len(self.layers)}{pooled}"


@model_builder
def build_egnn(config: EGNNModelConfig, spec: OutputSpec, statistics: DatasetStatistics) -> EGNN:
    """The EGNN network for a config and output spec (seeded, in ``config.model_dtype``)."""
    return EGNN(config, spec, neighbour_normalisation(None, statistics.avg_num_neighbours))
