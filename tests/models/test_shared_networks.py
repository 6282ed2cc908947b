"""What the families' networks share: initialisation, neighbour normalisation, pooling."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
import torch

from physicsml_like.data.statistics import DatasetStatistics
from physicsml_like.nn.graph import (
    OUT_GRAPH_SCALARS,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
    neighbour_normalisation,
)

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "egnn": {"c_hidden": 8, "num_layers": 2, "num_rbf": 4, "modify_coords": True},
    "painn": {"num_features": 8, "num_layers": 2},
    "tensornet": {"num_features": 8, "num_interaction_layers": 2},
    "ani": {"hidden_sizes": [8], "which_ani": None},
    "mace": {"hidden_irreps": "4x0e + 4x1o", "max_ell": 1, "correlation": 2, "num_interactions": 2, "radial_mlp": [8]},
    "nequip": {"num_features": 4, "num_layers": 2, "max_ell": 1, "radial_mlp": [8]},
    "allegro": {"num_layers": 2, "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8], "mlp_latent_dimensions": [8]},
}


def _build(family: str, avg_measured: float = 7.0, spec: OutputSpec | None = None, **fields: Any) -> AtomisticNetwork:
    module = importlib.import_module(f"physicsml_like.models.{family}")
    config_class = next(getattr(module, a) for a in module.__all__ if a.endswith("ModelConfig"))
    config = config_class(datamodule={"cut_off": 4.0}, model_dtype="float64", **{**ARCHITECTURES[family], **fields})
    spec = spec or OutputSpec(num_elements=2, num_node_features=2, num_graph_scalars=1)
    statistics = DatasetStatistics(num_structures=1, num_atoms=4, elements=[1, 8], element_counts=[2, 2], avg_num_neighbours=avg_measured)
    return getattr(module, f"build_{family}")(config, spec, statistics)


def _state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


# ---------------------------------------------------------------------------- initialisation
def test_egnn_energy_head_is_zero_after_a_reset_while_other_weights_are_drawn_again() -> None:
    network = _build("egnn")
    head = network.per_atom_head[-1]
    assert torch.count_nonzero(head.weight) == 0 and torch.count_nonzero(head.bias) == 0
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(1.0)
    before = _state(network)
    network.reset_parameters()
    after = _state(network)
    assert torch.count_nonzero(head.weight) == 0 and torch.count_nonzero(head.bias) == 0
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "embedding.weight" in changed and "layers.0.phi_e.0.weight" in changed
    # the coordinate update starts small again (xavier with gain 1e-3), not at nn.Linear's scale
    assert network.layers[0].phi_x[-1].weight.abs().max() < 1e-3


def _parameters_outside_e3nn(network: torch.nn.Module) -> set[str]:
    """Parameters whose module is the package's or torch's (e3nn's layers have no reset)."""
    names = set()
    for prefix, module in network.named_modules():
        if not type(module).__module__.startswith("e3nn"):
            names |= {f"{prefix}.{name}" if prefix else name for name, _ in module.named_parameters(recurse=False)}
    return names


@pytest.mark.parametrize("family", sorted(ARCHITECTURES))
def test_reset_parameters_draws_the_weights_again(family: str) -> None:
    network = _build(family, bessel_basis_trainable=True) if family in ("nequip", "allegro", "painn") else _build(family)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(1.0)
    before = {k: p.detach().clone() for k, p in network.named_parameters()}
    network.reset_parameters()
    changed = {k for k, p in network.named_parameters() if not torch.equal(before[k], p)}
    expected = _parameters_outside_e3nn(network)
    assert expected and changed == expected, sorted(expected ^ changed)


def test_a_seeded_build_is_reproducible_and_seed_dependent() -> None:
    first, second, other = _build("mace"), _build("mace"), _build("mace", seed=1)
    a, b, c = _state(first), _state(second), _state(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ---------------------------------------------------------------------------- neighbour normalisation
def test_neighbour_normalisation_prefers_the_config_and_never_goes_below_one() -> None:
    assert neighbour_normalisation(None, 7.5) == 7.5
    assert neighbour_normalisation(3.0, 7.5) == 3.0
    assert neighbour_normalisation(None, 0.0) == 1.0
    assert neighbour_normalisation(0.5, 7.5) == 1.0


def _nequip_scale(network: AtomisticNetwork) -> float:
    radial = network.blocks[0].conv.radial
    return radial.scale * math.sqrt(radial.last.shape[0])


@pytest.mark.parametrize("measured", [0.3, 7.0])
def test_every_normalising_family_resolves_the_count_the_same_way(measured: float) -> None:
    expected = neighbour_normalisation(None, measured)
    assert _build("egnn", measured).norm == pytest.approx(expected)
    assert _build("mace", measured).avg_num_neighbours == pytest.approx(expected)
    assert _build("allegro", measured).norm == pytest.approx(math.sqrt(expected))
    assert _nequip_scale(_build("nequip", measured)) == pytest.approx(1.0 / math.sqrt(expected))
    assert _build("mace", measured, avg_num_neighbours=9.0).avg_num_neighbours == 9.0
    assert _build("allegro", measured, avg_num_neighbours=9.0).norm == pytest.approx(3.0)
    assert _nequip_scale(_build("nequip", measured, avg_num_neighbours=9.0)) == pytest.approx(1.0 / 3.0)


# ---------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("family", sorted(ARCHITECTURES))
def test_networks_leave_the_pooling_to_the_config(family: str) -> None:
    assert not hasattr(_build(family), "graph_scalar_pooling")


def _two_graphs() -> AtomicGraph:
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.9, 0.0, 0.0], [3.0, 3.0, 3.0], [3.0, 4.1, 3.0]], dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 0, 2, 1, 2, 3, 4], [1, 0, 2, 0, 2, 1, 4, 3]])
    vectors = positions[edge_index[1]] - positions[edge_index[0]]
    species = torch.tensor([1, 0, 0, 0, 0])
    return AtomicGraph(
        torch.nn.functional.one_hot(species, 2).to(torch.float64), species, positions, edge_index, vectors,
        torch.linalg.norm(vectors, dim=-1), torch.tensor([0, 0, 0, 1, 1]), 2,
    )


def test_egnn_pooled_head_pools_as_config_pool_type_says() -> None:
    outputs = {}
    for how in ("sum", "mean"):
        network = _build("egnn", pool_from="nodes_edges", pool_type=how)
        assert f"pooled head: {how} of nodes_edges" in repr(network)
        with torch.no_grad():
            for parameter in network.parameters():
                parameter.add_(0.1)
        outputs[how] = network(_two_graphs())[OUT_GRAPH_SCALARS]
    # same weights (same seed, same shifts), different pooling of graphs of 3 and 2 atoms
    assert not torch.allclose(outputs["sum"], outputs["mean"])
