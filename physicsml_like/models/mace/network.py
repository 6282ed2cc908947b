"""The MACE network (Batatia et al. 2022, arXiv:2206.07697) on e3nn irreps.

``h_i^0 = W z_i`` (element embedding). Each layer ``t``:

1. atomic basis ``A_i = sum_j R(r_ij) (W h_j) ⊗ Y(r_ij) / avg_neighbours``
   (:class:`~.interaction.InteractionBlock`);
2. product basis ``B_i`` = weighted symmetric powers of ``A_i`` up to ``correlation``, coupled
   back to the hidden irreps (:class:`~.product.SymmetricContraction`), plus a residual skip;
3. readout: a per-atom energy contribution from the scalars of ``h_i^t``.

The per-atom energy is the sum of the layers' readouts; the training module adds per-element
reference energies and the dataset's scale and shift, and takes forces and stress by autograd.
The last layer keeps only scalar channels (as the reference does) unless a vector output is
predicted. Node scalars (e.g. charges) share the readouts as extra columns; a dipole
``sum_i q_i (r_i - centroid) + mu_i`` is made by the training module from per-atom charges
``q_i`` and ``1o`` atomic dipoles ``mu_i`` read out the same way, so it rotates with the molecule.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from e3nn import o3
from torch import nn

from ...config.training import OptimizerConfig
from ...data.statistics import DatasetStatistics
from ...nn.builder import model_builder
from ...nn.equivariant import uniform_channels
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
    neighbour_normalisation,
)
from ...nn.radial import RadialEmbedding
from .config import MACEModelConfig
from .convolution import Edges
from .edges import reverse_pairs
from .interaction import InteractionBlock
from .linear import IrrepsLinear
from .product import AtomElements, ProductBasisBlock
from .readout import Readout

__all__ = ["MACE", "build_mace"]

_RESIDUAL = "RealAgnosticResidualInteractionBlock"


def _atomic_basis_irreps(channels: int, max_ell: int, hidden: o3.Irreps, first: bool) -> o3.Irreps:
    """Irreps of the atomic basis ``A``: ``c x`` each spherical harmonic; with odd scalars among
    the hidden irreps, the later layers take both parities of every ``l`` (as the reference)."""
    if not first and hidden.count("0o") > 0:
        return o3.Irreps([(channels, (degree, p)) for degree in range(max_ell + 1) for p in (1, -1)]).sort().irreps
    return o3.Irreps([(channels, ir) for _, ir in o3.Irreps.spherical_harmonics(max_ell)])


class MACE(AtomisticNetwork):
    """MACE with heads for energies (and other graph scalars), node scalars, node vectors and
    graph vectors (dipoles).

    ``graph`` -> dimensionless outputs (see :mod:`physicsml_like.nn.graph`): per-atom graph
    scalars ``[N, k]``, node scalars ``[N, k]``, node vectors ``[N, 3]`` and, for a dipole, charges
    ``[N, 1]`` and atomic dipoles ``[N, 3]``.
    """

    supported_outputs = frozenset({OUT_GRAPH_SCALARS, OUT_NODE_SCALARS, OUT_NODE_VECTOR, OUT_GRAPH_VECTOR})

    def __init__(self, config: MACEModelConfig, spec: OutputSpec, avg_num_neighbours: float) -> None:
        super().__init__(spec)
        if spec.num_edge_features:
            raise ValueError("MACE does not use bond features: unset datamodule.bond_features")
        if spec.num_graph_attrs:
            raise ValueError("MACE does not use graph attributes: remove them from the data")
        for field, width in (("graph_vector_dim", spec.graph_vector_dim), ("node_vector_dim", spec.node_vector_dim)):
            if width not in (0, 3):
                raise ValueError(f"MACE predicts 3-vectors; {field} is {width}")
        hidden = o3.Irreps(config.hidden_irreps).sort().irreps.simplify()
        channels = uniform_channels(hidden, "hidden_irreps")
        self.hidden_irreps = hidden
        self.num_elements = spec.num_elements
        self.num_graph_scalars = spec.num_graph_scalars
        self.num_node_scalars = spec.num_node_scalars
        self.predicts_dipole = bool(spec.graph_vector_dim)
        self.predicts_node_vector = bool(spec.node_vector_dim)
        num_scalars = spec.num_graph_scalars + spec.num_node_scalars + int(self.predicts_dipole)
        num_vectors = int(self.predicts_node_vector) + int(self.predicts_dipole)
        if num_vectors and hidden.count("1o") == 0:
            raise ValueError(f"vector outputs need 1o channels in hidden_irreps, got {config.hidden_irreps!r}")
        self.avg_num_neighbours = float(avg_num_neighbours)

        sh_irreps = o3.Irreps.spherical_harmonics(config.max_ell)
        self.spherical_harmonics = o3.SphericalHarmonics(sh_irreps, normalize=True, normalization="component")
        self.radial = RadialEmbedding(
            config.datamodule.cut_off, config.num_bessel, envelope_p=config.num_polynomial_cutoff
        )
        scalars = o3.Irreps([(channels, "0e")])
        self.embedding = IrrepsLinear(o3.Irreps([(spec.num_node_features, "0e")]), scalars)

        mlp_width = o3.Irreps(config.mlp_irreps).dim
        correlations = config.correlations()
        self.interactions = nn.ModuleList()
        self.products = nn.ModuleList()
        self.readouts = nn.ModuleList()
        irreps_in = scalars
        for layer in range(config.num_interactions):
            last = layer == config.num_interactions - 1
            irreps_out = scalars if last and not num_vectors else hidden
            residual = (config.interaction_first if layer == 0 else config.interaction) == _RESIDUAL
            target = _atomic_basis_irreps(channels, config.max_ell, hidden, first=layer == 0)
            self.interactions.append(
                InteractionBlock(
                    irreps_in, sh_irreps, target, irreps_out,
                    num_elements=spec.num_elements,
                    num_radial=config.num_bessel,
                    radial_hidden=config.radial_mlp,
                    radial_activation=config.radial_mlp_activation,
                    avg_num_neighbours=self.avg_num_neighbours,
                    residual=residual,
                )
            )
            self.products.append(ProductBasisBlock(target, irreps_out, correlations[layer], spec.num_elements, residual))
            nonlinear = last and layer > 0
            self.readouts.append(
                Readout(irreps_out, num_scalars, num_vectors, hidden=mlp_width if nonlinear else 0, gate=config.gate)
            )
            irreps_in = irreps_out

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        receivers, senders = graph.edge_index
        species = graph.species
        element_onehot = None
        elements = None
        if self.num_elements > 1:
            element_onehot = nn.functional.one_hot(species, self.num_elements).to(graph.positions.dtype)
            elements = AtomElements.of(species, self.num_elements)
        # harmonics of the sender -> receiver direction (edge vectors point receiver -> sender)
        sh = self.spherical_harmonics(-graph.edge_vectors)
        # radial features depend on the bond length only: once per bond, not per direction
        bonds, bond_of_edge = reverse_pairs(graph.edge_index, graph.edge_vectors)
        radial = self.radial(graph.edge_lengths.index_select(0, bonds))
        edges = Edges(receivers, senders, bond_of_edge, graph.num_nodes, bonds.shape[0])
        node_feats = self.embedding(graph.node_attrs.unsqueeze(1))
        scalars: torch.Tensor | None = None
        vectors: torch.Tensor | None = None
        for interaction, product, readout in zip(self.interactions, self.products, self.readouts, strict=True):
            basis, skip = interaction(node_feats, element_onehot, sh, radial, edges)
            node_feats = product(basis, skip, elements)
            layer_scalars, layer_vectors = readout(node_feats)
            scalars = layer_scalars if scalars is None else scalars + layer_scalars
            if layer_vectors is not None:
                vectors = layer_vectors if vectors is None else vectors + layer_vectors
        assert scalars is not None  # at least one layer
        return self._heads(scalars, vectors)

    def _heads(self, scalars: torch.Tensor, vectors: torch.Tensor | None) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        k_graph, k_node = self.num_graph_scalars, self.num_node_scalars
        if k_graph:
            out[OUT_PER_ATOM_GRAPH_SCALARS] = scalars[:, :k_graph]
        if k_node:
            out[OUT_NODE_SCALARS] = scalars[:, k_graph : k_graph + k_node]
        if self.predicts_node_vector:
            assert vectors is not None
            out[OUT_NODE_VECTOR] = vectors[:, :, 0]
        if self.predicts_dipole:
            assert vectors is not None
            out[OUT_CHARGES] = scalars[:, -1:]
            out[OUT_ATOMIC_DIPOLES] = vectors[:, :, -1]
        return out

    def parameter_groups(self, optimizer_config: OptimizerConfig) -> list[dict[str, Any]]:
        """Optimiser groups with weight decay where mace-torch applies it.

        Decay goes on the interactions' ``linear`` weights (after the neighbour sum) and on the
        product blocks; the embedding, radial MLPs, ``linear_up``, skip connections and readouts
        get none. The decay is the user's ``optimizer.config["weight_decay"]`` (the optimiser's
        default when it is not given); the config is only read.
        """
        decay = optimizer_config.config.get("weight_decay")
        decay_setting = {} if decay is None else {"weight_decay": decay}
        interaction_decay = [p for block in self.interactions for p in cast(InteractionBlock, block).linear.parameters()]
        decayed_ids = {id(p) for p in interaction_decay}
        interaction_rest = [p for p in self.interactions.parameters() if id(p) not in decayed_ids]
        groups = [
            {"name": "embedding", "params": list(self.embedding.parameters()), "weight_decay": 0.0},
            {"name": "interactions_decay", "params": interaction_decay, **decay_setting},
            {"name": "interactions_no_decay", "params": interaction_rest, "weight_decay": 0.0},
            {"name": "products", "params": list(self.products.parameters()), **decay_setting},
            {"name": "readouts", "params": list(self.readouts.parameters()), "weight_decay": 0.0},
        ]
        for group in groups:
            group["params"] = [p for p in group["params"] if p.requires_grad]
        return [group for group in groups if group["params"]]

    def architecture(self) -> str:
        return (
            f"hidden={self.hidden_irreps}, layers={len(self.interactions)}, elements={self.num_elements}, "
            f"avg_num_neighbours={self.avg_num_neighbours:.3g}"
        )


@model_builder
def build_mace(config: MACEModelConfig, spec: OutputSpec, statistics: DatasetStatistics) -> MACE:
    """The MACE network for a config and output spec (seeded, in ``config.model_dtype``)."""
    return MACE(config, spec, neighbour_normalisation(config.avg_num_neighbours, statistics.avg_num_neighbours))
