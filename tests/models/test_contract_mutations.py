"""Every contract check fails on a network broken on purpose: a check that cannot fail is no check.

Each case takes a perturbed contract model, shows that the check passes on it, breaks the
network in one small, realistic way and shows that the check then raises an ``AssertionError``
of its own (not :class:`~.contract.TrivialComparison`: the broken outputs are still
non-trivial). The breaks act on what every family shares: the :class:`AtomicGraph` the network
reads and the per-atom energies it returns (``OUT_PER_ATOM_GRAPH_SCALARS``), so forces and stress
still come from the shared module by autograd. EGNN, whose zero-initialised energy head once let
every check compare zeros, is broken in every way; PaiNN shows the same breaks caught elsewhere.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ase
import pytest
import torch

from physicsml_like import EGNNModel, PaiNNModel
from physicsml_like.nn.graph import OUT_PER_ATOM_GRAPH_SCALARS, AtomicGraph
from physicsml_like.nn.scatter import scatter_sum
from physicsml_like.training.wrapper import PhysicsMLModel

from .contract import (
    DIPOLE_AND_CHARGES,
    MOLECULE_TARGETS,
    PERIODIC_TARGETS,
    TrivialComparison,
    check_energy_continuous_at_cutoff,
    check_forces_are_gradients,
    check_lattice_shift,
    check_learns,
    check_permutation,
    check_rotation,
    check_save_load,
    check_stress,
    check_supercell_is_extensive,
    check_translation,
    perturb_weights,
    perturbed,
    small_config,
)

FAMILIES: dict[str, tuple[type[PhysicsMLModel], dict[str, Any]]] = {
    "egnn": (EGNNModel, {"c_hidden": 16, "num_layers": 2, "num_rbf": 8}),
    "painn": (PaiNNModel, {"num_features": 8, "num_bessel": 8, "num_layers": 2}),
}
#: A break adds this (dimensionless, times the energy scale of about 1 eV) to per-atom energies:
#: far above the checks' tolerances, small beside the perturbed models' own energies.
STRENGTH = 0.01

Inputs = Callable[[AtomicGraph], AtomicGraph]
Energies = Callable[[AtomicGraph], torch.Tensor]  # [N] added to every atom's energy


# ---------------------------------------------------------------------- breaking a network
def _break(monkeypatch: pytest.MonkeyPatch, model: PhysicsMLModel, *, inputs: Inputs | None = None,
           energies: Energies | None = None) -> None:
    """Wrap the forward of the network that predicts: ``inputs`` rewrites the graph it reads,
    ``energies`` adds a term to its per-atom energies (column 0)."""
    network = model.module.inference_network()
    forward = network.forward

    def broken(graph: AtomicGraph) -> dict[str, torch.Tensor]:
        graph = inputs(graph) if inputs is not None else graph
        out = dict(forward(graph))
        if energies is not None:
            per_atom = out[OUT_PER_ATOM_GRAPH_SCALARS]
            out[OUT_PER_ATOM_GRAPH_SCALARS] = torch.cat([per_atom[:, :1] + energies(graph)[:, None], per_atom[:, 1:]], dim=1)
        return out

    monkeypatch.setattr(network, "forward", broken)


def _per_centre(graph: AtomicGraph, per_edge: torch.Tensor) -> torch.Tensor:
    return scatter_sum(per_edge, graph.edge_index[0], graph.num_nodes)


def _direct(graph: AtomicGraph) -> torch.Tensor:
    """Edge vectors without their periodic-image shifts."""
    i, j = graph.edge_index
    return graph.positions[j] - graph.positions[i]


def absolute_positions(graph: AtomicGraph) -> torch.Tensor:
    """An energy of where each atom is, |r_i|^2: invariant under rotations about the origin."""
    return STRENGTH * (graph.positions**2).sum(-1)


def x_components(graph: AtomicGraph) -> torch.Tensor:
    """An energy of the x-components of the edge vectors: translation invariant, not rotation."""
    return STRENGTH * _per_centre(graph, graph.edge_vectors[:, 0] ** 2)


def atom_index(graph: AtomicGraph) -> torch.Tensor:
    """Each atom's (invariant) neighbourhood weighted by its index in the batch."""
    index = torch.arange(graph.num_nodes, dtype=graph.positions.dtype)
    return STRENGTH * index * _per_centre(graph, graph.edge_lengths)


def number_of_atoms(graph: AtomicGraph) -> torch.Tensor:
    """An energy per atom that grows with the size of its structure: not extensive."""
    counts = torch.bincount(graph.batch, minlength=graph.num_graphs).to(graph.positions.dtype)
    return STRENGTH * counts[graph.batch]


def half_detached(graph: AtomicGraph) -> torch.Tensor:
    """sum_j r_ij^2 computed as r * r.detach(): its value is right, its gradient half of it."""
    return STRENGTH * _per_centre(graph, graph.edge_lengths * graph.edge_lengths.detach())


def step_at_cutoff(graph: AtomicGraph) -> torch.Tensor:
    """An energy per neighbour: it jumps when a neighbour crosses the cutoff."""
    return STRENGTH * _per_centre(graph, torch.ones_like(graph.edge_lengths))


def without_images(graph: AtomicGraph) -> AtomicGraph:
    """Drop the edges to periodic images, as a neighbour list that ignores the cell would."""
    keep = (graph.edge_vectors - _direct(graph)).detach().norm(dim=-1) < 1e-8
    edge_attrs = graph.edge_attrs[keep] if graph.edge_attrs is not None else None
    return replace(graph, edge_index=graph.edge_index[:, keep], edge_vectors=graph.edge_vectors[keep],
                   edge_lengths=graph.edge_lengths[keep], edge_attrs=edge_attrs)


def unstrained_shifts(graph: AtomicGraph) -> AtomicGraph:
    """Image shifts taken from the unstrained cell: the same edge vectors, but the strain reaches
    them only through the positions."""
    direct = _direct(graph)
    vectors = direct + (graph.edge_vectors - direct).detach()
    return replace(graph, edge_vectors=vectors, edge_lengths=torch.linalg.norm(vectors, dim=-1))


# ---------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    """A contract check, whether it runs on the periodic model, and the break it must catch.
    ``check(model, frame)`` gets ethanol[7] or a copper frame; some checks build their own."""

    check: Callable[[PhysicsMLModel, ase.Atoms], None]
    periodic: bool
    inputs: Inputs | None = None
    energies: Energies | None = None


CASES = {
    "rotation": Case(check_rotation, False, energies=x_components),
    "rotation-periodic": Case(check_rotation, True, energies=x_components),
    "translation": Case(check_translation, False, energies=absolute_positions),
    "permutation": Case(check_permutation, False, energies=atom_index),
    "supercell": Case(lambda model, _: check_supercell_is_extensive(model), True, energies=number_of_atoms),
    "lattice-shift": Case(lambda model, _: check_lattice_shift(model), True, inputs=without_images),
    "stress": Case(lambda model, _: check_stress(model), True, inputs=unstrained_shifts),
    "forces": Case(check_forces_are_gradients, False, energies=half_detached),
    "cutoff": Case(lambda model, _: check_energy_continuous_at_cutoff(model), False, energies=step_at_cutoff),
}


@pytest.fixture(scope="module")
def frames(ethanol: list[ase.Atoms], cu_frames: list[ase.Atoms]) -> dict[bool, ase.Atoms]:
    """periodic -> the structure a case checks."""
    return {False: ethanol[7], True: cu_frames[8]}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms],
           cu_frames: list[ase.Atoms]) -> dict[tuple[str, bool], PhysicsMLModel]:
    """(family, periodic) -> a perturbed float64 model, as the contract builds them."""
    built = {}
    for family, (model_class, arch) in FAMILIES.items():
        for periodic, targets, frames in ((False, {**MOLECULE_TARGETS, **DIPOLE_AND_CHARGES}, ethanol), (True, PERIODIC_TARGETS, cu_frames)):
            config = small_config(tmp_path_factory.mktemp(family), targets, model_dtype="float64", **arch)
            built[family, periodic] = perturbed(model_class(config), frames[:20])
    return built


def _fails_on_its_own(check: Callable[[], None]) -> None:
    with pytest.raises(AssertionError) as raised:
        check()
    assert not isinstance(raised.value, TrivialComparison), f"refused as trivial, not caught: {raised.value}"


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("name", list(CASES))
def test_check_catches_a_broken_network(name: str, family: str, models, frames, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    model, frame = models[family, case.periodic], frames[case.periodic]
    case.check(model, frame)  # the unbroken network passes
    _break(monkeypatch, model, inputs=case.inputs, energies=case.energies)
    _fails_on_its_own(lambda: case.check(model, frame))


@pytest.fixture
def restored(models) -> Iterator[dict[tuple[str, bool], PhysicsMLModel]]:
    """The models, with their weights put back after the test."""
    states = {key: copy.deepcopy(model.module.state_dict()) for key, model in models.items()}
    yield models
    for key, model in models.items():
        model.module.load_state_dict(states[key])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_save_load_catches_weights_changed_after_saving(family: str, restored, ethanol, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model = restored[family, False]
    check_save_load(model, ethanol[:4], tmp_path / "good")
    save = model.save

    def save_then_change(path: str | Path) -> Path:  # what is saved is not what predicts
        folder = save(path)
        perturb_weights(model, seed=1, scale=1e-6)
        return folder

    monkeypatch.setattr(model, "save", save_then_change)
    _fails_on_its_own(lambda: check_save_load(model, ethanol[:4], tmp_path / "stale"))


def test_learning_check_catches_a_model_that_does_not_learn(tmp_path: Path, ethanol) -> None:
    """Adam at a zero learning rate: EGNN's forces stay at zero, the baseline itself."""
    config = small_config(tmp_path, {**MOLECULE_TARGETS, "cut_off": 4.5}, epochs=2, optimizer={"name": "Adam", "config": {"lr": 0.0}},
                          **FAMILIES["egnn"][1])
    _fails_on_its_own(lambda: check_learns(lambda: EGNNModel(config), ethanol[:40], ethanol[500:540]))


@pytest.mark.parametrize("check", ["forces", "rotation", "stress"])
def test_checks_refuse_an_unperturbed_egnn(check: str, tmp_path: Path, ethanol, cu_frames, frames) -> None:
    """EGNN's energy head starts at zero: untrained, its forces and stress are exactly zero and a
    check comparing them would pass whatever the network does. The checks refuse it."""
    case = CASES[check]
    targets, data = (PERIODIC_TARGETS, cu_frames) if case.periodic else (MOLECULE_TARGETS, ethanol)
    model = EGNNModel(small_config(tmp_path, targets, model_dtype="float64", **FAMILIES["egnn"][1])).initialise(data[:20])
    with pytest.raises(TrivialComparison):
        case.check(model, frames[case.periodic])
