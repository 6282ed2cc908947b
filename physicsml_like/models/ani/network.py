"""ANI: per-atom AEVs, one feed-forward network per element, per-atom energy contributions.

The energy of a structure is the sum of the atoms' network outputs (the training module adds
reference energies, scale and shift). Extra output columns of the same networks give per-atom
scalars such as charges.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from ...data.statistics import DatasetStatistics
from ...nn.builder import model_builder
from ...nn.capture import is_capturing
from ...nn.graph import (
    OUT_GRAPH_SCALARS,
    OUT_NODE_SCALARS,
    OUT_PER_ATOM_GRAPH_SCALARS,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
)
from ...nn.mlp import activation
from .aev import AtomicEnvironmentVector
from .config import AEVConfig, ANIModelConfig
from .presets import PRESETS

__all__ = ["ANI", "ElementNetworks", "build_ani"]

_DEFAULT_HIDDEN = (160, 128, 96)


def _activation(name: str, celu_alpha: float) -> nn.Module:
    if name.lower() == "celu":
        return nn.CELU(alpha=celu_alpha)
    return activation(name)


class ElementNetworks(nn.Module):
    """One feed-forward network per element slot; each atom goes through its element's.

    Parameters
    ----------
    num_inputs: AEV length.
    hidden_sizes: hidden widths of each slot's network.
    num_outputs: output columns (energy and other per-atom targets).
    activation_name, celu_alpha: activation between layers.
    """

    def __init__(
        self,
        num_inputs: int,
        hidden_sizes: Sequence[Sequence[int]],
        num_outputs: int,
        activation_name: str = "CELU",
        celu_alpha: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.hidden_sizes = [tuple(sizes) for sizes in hidden_sizes]
        self.activation_name = activation_name
        networks = []
        for sizes in self.hidden_sizes:
            layers: list[nn.Module] = []
            widths = [num_inputs, *sizes]
            for n_in, n_out in itertools.pairwise(widths):
                layers += [nn.Linear(n_in, n_out), _activation(activation_name, celu_alpha)]
            layers.append(nn.Linear(widths[-1], num_outputs))
            networks.append(nn.Sequential(*layers))
        self.networks = nn.ModuleList(networks)

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """``features [N, num_inputs]``, ``species [N]`` -> ``[N, num_outputs]``."""
        out = features.new_zeros((features.shape[0], self.num_outputs))
        for slot, network in enumerate(self.networks):
            atoms = torch.nonzero(species == slot).squeeze(1)
            if is_capturing() or atoms.numel():  # a recorded graph cannot branch on the count
                out = out.index_copy(0, atoms, network(features[atoms]))
        return out

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def extra_repr(self) -> str:
        shapes = ", ".join(" -> ".join(map(str, (self.num_inputs, *s, self.num_outputs))) for s in self.hidden_sizes)
        weights = sum(p.numel() for p in self.parameters())
        return f"{len(self.networks)} elements [{shapes}], act={self.activation_name} | {weights} weights"


class ANI(AtomisticNetwork):
    """ANI network: ``graph`` -> per-atom energies ``[N, k]`` (and node scalars ``[N, m]``).

    Parameters
    ----------
    config: the ANI config (its preset, ``which_ani``, resolved into ``datamodule.elements`` and ``cut_off``).
    spec: the heads wanted; only graph scalars (as per-atom contributions) and node scalars.
    """

    supported_outputs = frozenset({OUT_GRAPH_SCALARS, OUT_NODE_SCALARS})

    def __init__(self, config: ANIModelConfig, spec: OutputSpec) -> None:
        super().__init__(spec)
        if spec.num_node_features != spec.num_elements:
            raise ValueError("ANI describes atoms by element only: leave datamodule.atom_features unset")
        if spec.num_edge_features or spec.num_graph_attrs:
            raise ValueError("ANI uses neither bond features nor graph attributes: unset datamodule.bond_features / graph_attrs_cols")
        preset = PRESETS[config.which_ani] if config.which_ani is not None else None
        aev = preset.aev if preset is not None else (config.aev or AEVConfig())
        self.aev = AtomicEnvironmentVector(config.datamodule.cut_off, aev, spec.num_elements)
        self.num_graph_scalars = spec.num_graph_scalars
        self.elements = ElementNetworks(
            self.aev.length,
            _hidden_sizes(config, spec.num_elements),
            spec.num_graph_scalars + spec.num_node_scalars,
            config.activation,
            config.celu_alpha,
        )

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        """Per-atom outputs.

        Parameters
        ----------
        graph: ``species [N]``, ``edge_index [2, E]``, ``edge_vectors [E, 3]``, ``edge_lengths [E]``.

        Returns
        -------
        ``OUT_PER_ATOM_GRAPH_SCALARS [N, k]`` and/or ``OUT_NODE_SCALARS [N, m]``.
        """
        features = self.aev(graph.species, graph.edge_index, graph.edge_vectors, graph.edge_lengths)
        outputs = self.elements(features, graph.species)
        out: dict[str, torch.Tensor] = {}
        k = self.num_graph_scalars
        if k:
            out[OUT_PER_ATOM_GRAPH_SCALARS] = outputs[:, :k]
        if self.spec.num_node_scalars:
            out[OUT_NODE_SCALARS] = outputs[:, k:]
        return out

    def architecture(self) -> str:
        return f"aev_length={self.aev.length}, elements={len(self.elements.networks)}"


def _hidden_sizes(config: ANIModelConfig, num_slots: int) -> list[tuple[int, ...]]:
    """Hidden widths of each element slot's network (slot order = ``datamodule.elements``)."""
    sizes = config.hidden_sizes
    if isinstance(sizes, list):
        return [tuple(sizes)] * num_slots
    if isinstance(sizes, dict):
        # the config checked that datamodule.elements is set and every element has sizes
        from ase.data import chemical_symbols

        elements = [chemical_symbols[e] if isinstance(e, int) else e for e in config.datamodule.elements or []]
        return [tuple(sizes[element]) for element in elements]
    if config.which_ani is not None:
        preset = PRESETS[config.which_ani]
        return [preset.hidden_sizes[element] for element in preset.elements]
    return [_DEFAULT_HIDDEN] * num_slots


@model_builder
def build_ani(config: ANIModelConfig, spec: OutputSpec, statistics: DatasetStatistics) -> ANI:
    """The ANI network for a config and output spec (seeded, in ``config.model_dtype``)."""
    return ANI(config, spec)
