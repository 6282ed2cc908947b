"""Allegro (Musaelian et al. 2023, arXiv:2204.05249) on e3nn irreps.

Features live on ordered pairs ``ij`` within the cutoff: a scalar latent ``x_ij`` (from the two
elements and the distance) and equivariant tensors ``V_ij`` (``env_embed_multiplicity`` channels
of irreps up to ``max_ell``). Each :class:`~.layers.AllegroLayer` couples ``V_ij`` with the
environment of the centre ``i`` only (a weighted sum over its neighbours of their spherical
harmonics) and feeds the invariant results into ``x_ij``: information never travels beyond the
cutoff of ``i``, so the model is strictly local and its cost is linear in the number of pairs.

Outputs are sums of per-pair quantities assigned to the centre atom: per-pair energies (their sum
is the energy), per-pair scalars for node scalars such as charges, and for a dipole per-pair
charges and ``l = 1`` vectors from the last layer's tensors (the parts the training module
turns into the dipole). Only the irreps that reach an output are computed:
the last layer keeps scalars (and ``l = 1`` for a dipole) and earlier layers what leads there.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from ...data.statistics import DatasetStatistics
from ...nn.builder import model_builder
from ...nn.equivariant import ScalarMLP, natural_order, spherical_harmonics_irreps
from ...nn.graph import (
    OUT_ATOMIC_DIPOLES,
    OUT_CHARGES,
    OUT_GRAPH_SCALARS,
    OUT_GRAPH_VECTOR,
    OUT_NODE_SCALARS,
    OUT_PER_ATOM_GRAPH_SCALARS,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
    neighbour_normalisation,
)
from ...nn.radial import BesselBasis, PolynomialCutoff
from ...nn.scatter import scatter_sum
from .config import AllegroModelConfig
from .layers import AllegroLayer

__all__ = ["Allegro", "build_allegro", "layer_irreps"]


def _reachable(irreps_in: list[o3.Irrep], irreps_sh: list[o3.Irrep], ir_out: o3.Irrep) -> bool:
    return any(ir_out in ir1 * ir2 for ir1 in irreps_in for ir2 in irreps_sh)


def layer_irreps(max_ell: int, parity: bool, num_layers: int, final: list[o3.Irrep]) -> list[list[o3.Irrep]]:
    """Irreps of the pair tensors after each layer (``num_layers`` lists): every irrep up to
    ``max_ell`` that the products can reach, pruned backwards to those that lead to ``final``.

    Examples
    --------
    >>> [" ".join(map(str, irreps)) for irreps in layer_irreps(2, True, 2, [])]
    ['0e 1o 2e', '']
    """
    sh = [ir for _, ir in spherical_harmonics_irreps(max_ell, parity)]
    candidates = sorted((o3.Irrep(ell, p) for ell in range(max_ell + 1) for p in ((1, -1) if parity else (1,))), key=natural_order)
    reachable, current = [], sh
    for _ in range(num_layers):
        current = [ir for ir in candidates if _reachable(current, sh, ir)]
        reachable.append(current)
    scalar = o3.Irrep("0e")
    needed = [ir for ir in final if ir in reachable[-1]]
    out: list[list[o3.Irrep]] = [needed]
    for k in range(num_layers - 1, 0, -1):
        # layer k needs the inputs that reach its outputs and its scalars
        wanted = set(out[0]) | {scalar}
        out.insert(0, [ir for ir in reachable[k - 1] if any(target in ir * ir2 for ir2 in sh for target in wanted)])
    return out


class Allegro(AtomisticNetwork):
    """Allegro with heads for per-atom energies (graph scalars), node scalars and a dipole.

    ``graph`` -> dimensionless outputs (see :mod:`physicsml_like.nn.graph`). Per-pair outputs are
    multiplied by the last cutoff's envelope and summed over the centre's pairs divided by
    ``sqrt(avg_num_neighbours)``.
    """

    supported_outputs = frozenset({OUT_GRAPH_SCALARS, OUT_NODE_SCALARS, OUT_GRAPH_VECTOR})

    def __init__(self, config: AllegroModelConfig, spec: OutputSpec, avg_num_neighbours: float) -> None:
        super().__init__(spec)
        if spec.num_graph_attrs:
            raise ValueError("Allegro takes no structure-level inputs: leave datamodule.graph_attrs_cols unset")
        channels = config.env_embed_multiplicity
        act = config.activation
        cutoff = config.datamodule.cut_off
        self.norm = math.sqrt(avg_num_neighbours)
        self.irreps_sh = spherical_harmonics_irreps(config.max_ell, config.parity)
        self.spherical_harmonics = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")
        cutoffs = config.per_layer_cutoffs or [cutoff] * (config.num_layers + 1)
        self.basis = BesselBasis(cutoffs[0], config.num_bessel, config.bessel_basis_trainable)
        self.envelopes = torch.nn.ModuleList(PolynomialCutoff(c, config.num_polynomial_cutoff) for c in cutoffs)
        latent = config.two_body_latent_mlp_latent_dimensions[-1]
        two_body_in = 2 * spec.num_node_features + config.num_bessel + spec.num_edge_features
        self.two_body = ScalarMLP([two_body_in, *config.two_body_latent_mlp_latent_dimensions], act, output_activation=True)

        vector = o3.Irrep(1, -1 if config.parity else 1)
        outputs = layer_irreps(config.max_ell, config.parity, config.num_layers, [vector] if spec.graph_vector_dim else [])
        ratios = config.latent_resnet_update_ratios or [0.5] * config.num_layers
        layers = []
        irreps_in = self.irreps_sh
        for index, irreps_out in enumerate(outputs):
            layer = AllegroLayer(
                irreps_in, self.irreps_sh, o3.Irreps([(1, ir) for ir in irreps_out]) if irreps_out else None,
                channels, latent, config.latent_mlp_latent_dimensions, config.env_embed_mlp_latent_dimensions, act,
                embeds_pairs=index == 0,
                resnet=config.latent_resnet,
                resnet_ratio=ratios[index],
                resnet_learnable=config.latent_resnet_update_ratios_learnable,
            )
            layers.append(layer)
            irreps_in = o3.Irreps([(1, ir) for ir in irreps_out])
        self.layers = torch.nn.ModuleList(layers)

        def edge_head(width: int) -> ScalarMLP:
            return ScalarMLP([latent, *config.mlp_latent_dimensions, width], act)

        self.energy_head = edge_head(spec.num_graph_scalars) if spec.num_graph_scalars else None
        self.node_scalar_head = edge_head(spec.num_node_scalars) if spec.num_node_scalars else None
        self.charge_head = edge_head(1) if spec.graph_vector_dim else None
        self.vector_weights = ScalarMLP([latent, channels], act) if spec.graph_vector_dim else None
        if spec.graph_vector_dim and vector not in outputs[-1]:
            raise ValueError(f"Allegro with max_ell={config.max_ell} has no l=1 pair tensors for y_graph_vector")
        self._vector_start = sum(ir.dim for ir in outputs[-1][: outputs[-1].index(vector)]) if spec.graph_vector_dim else 0

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        """Outputs for a batch.

        Parameters
        ----------
        graph: node attributes ``[N, F]``, edge vectors ``[E, 3]`` and lengths ``[E]``,
            ``edge_index [2, E]`` (centre, neighbour), ``batch [N]``.

        Returns
        -------
        ``per_atom_graph_scalars [N, k]``, ``node_scalars [N, k]``, and for a dipole
        ``charges [N, 1]`` and ``atomic_dipoles [N, 3]`` (those the spec asks for).
        """
        centre, neighbour = graph.edge_index
        num_nodes = graph.num_nodes
        lengths = graph.edge_lengths
        envelopes = [envelope(lengths) for envelope in self.envelopes]
        harmonics = self.spherical_harmonics(graph.edge_vectors)
        two_body = [graph.node_attrs.index_select(0, centre), graph.node_attrs.index_select(0, neighbour),
                    self.basis(lengths) * envelopes[0].unsqueeze(-1)]
        if graph.edge_attrs is not None:
            two_body.append(graph.edge_attrs)
        latents = self.two_body(torch.cat(two_body, dim=-1)) * envelopes[0].unsqueeze(-1)
        tensors = None
        for index, layer in enumerate(self.layers):
            latents, tensors = layer(latents, tensors, harmonics, envelopes[index], envelopes[index + 1], centre, num_nodes, self.norm)
        last = envelopes[-1].unsqueeze(-1)

        def per_atom(per_pair: torch.Tensor) -> torch.Tensor:
            return scatter_sum(per_pair * last, centre, num_nodes) / self.norm

        out: dict[str, torch.Tensor] = {}
        if self.energy_head is not None:
            out[OUT_PER_ATOM_GRAPH_SCALARS] = per_atom(self.energy_head(latents))
        if self.node_scalar_head is not None:
            out[OUT_NODE_SCALARS] = per_atom(self.node_scalar_head(latents))
        if self.charge_head is not None and self.vector_weights is not None and tensors is not None:
            vectors = tensors[:, :, self._vector_start : self._vector_start + 3]  # [E, U, 3]
            pair_vectors = (self.vector_weights(latents).unsqueeze(-1) * vectors).sum(1) / math.sqrt(vectors.shape[1])
            out[OUT_CHARGES] = per_atom(self.charge_head(latents))
            out[OUT_ATOMIC_DIPOLES] = per_atom(pair_vectors)
        return out

    def architecture(self) -> str:
        return f"layers={len(self.layers)}, sh={self.irreps_sh}, cutoffs={[e.cutoff for e in self.envelopes]}"


@model_builder
def build_allegro(config: AllegroModelConfig, spec: OutputSpec, statistics: DatasetStatistics) -> Allegro:
    """The Allegro network for a config and output spec (seeded, in ``config.model_dtype``)."""
    return Allegro(config, spec, neighbour_normalisation(config.avg_num_neighbours, statistics.avg_num_neighbours))
