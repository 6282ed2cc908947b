"""The families that predict a dipole give its per-atom parts; the shared readout makes the dipole.

Networks return per-atom charges ``q_i`` (``OUT_CHARGES``) and atomic dipoles ``mu_i``
(``OUT_ATOMIC_DIPOLES``) instead of a dipole they summed themselves. The checks here:

- the saved models of ``tests/compat/saved`` (made when each network still summed its own dipole)
  give back their saved dipoles through :func:`~physicsml_like.nn.readout.dipole_moment`;
- for every dipole family, the parts have the documented shapes, charges are invariant and
  atomic dipoles rotate with the structure, and the dipole does not move with the structure.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from physicsml_like.data.statistics import DatasetStatistics
from physicsml_like.nn.graph import (
    OUT_ATOMIC_DIPOLES,
    OUT_CHARGES,
    OUT_GRAPH_VECTOR,
    AtomicGraph,
    AtomisticNetwork,
    OutputSpec,
)
from physicsml_like.nn.readout import dipole_moment
from physicsml_like.nn.scatter import scatter_sum

SAVED = Path(__file__).resolve().parents[1] / "compat" / "saved"
DIPOLE_CASES = ["egnn_molecule", "mace_molecule", "nequip_molecule", "painn_molecule"]

# family -> a small architecture that predicts a dipole
DIPOLE_FAMILIES: dict[str, dict[str, Any]] = {
    "egnn": {"c_hidden": 8, "num_layers": 2, "num_rbf": 4},
    "painn": {"num_features": 8, "num_layers": 2},
    "mace": {"hidden_irreps": "4x0e + 4x1o", "max_ell": 2, "correlation": 2, "num_interactions": 2, "radial_mlp": [8]},
    "nequip": {"num_features": 4, "num_layers": 2, "max_ell": 1, "radial_mlp": [8]},
    "allegro": {"num_layers": 2, "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8], "mlp_latent_dimensions": [8]},
}


def _family(name: str) -> tuple[type, Any]:
    """The config class and network builder of a family (``"nequip"`` or ``"nequip_model"``)."""
    family = name.removesuffix("_model")
    module = importlib.import_module(f"physicsml_like.models.{family}")
    config_class = next(getattr(module, a) for a in module.__all__ if a.endswith("ModelConfig"))
    return config_class, getattr(module, f"build_{family}")


def _graph(frames: list[Any], elements: list[int], cut_off: float, dtype: torch.dtype) -> AtomicGraph:
    """A batch of molecules with every pair closer than ``cut_off`` as edges (both directions)."""
    positions, species, batch, senders, receivers = [], [], [], [], []
    offset = 0
    for k, atoms in enumerate(frames):
        pos = np.asarray(atoms.positions)
        distances = np.linalg.norm(pos[None] - pos[:, None], axis=-1)
        i, j = np.nonzero((distances < cut_off) & ~np.eye(len(atoms), dtype=bool))
        receivers.append(i + offset)
        senders.append(j + offset)
        positions.append(pos)
        species += [elements.index(int(z)) for z in atoms.numbers]
        batch += [k] * len(atoms)
        offset += len(atoms)
    pos_t = torch.tensor(np.concatenate(positions), dtype=dtype)
    edge_index = torch.tensor(np.stack([np.concatenate(receivers), np.concatenate(senders)]))
    edge_vectors = pos_t[edge_index[1]] - pos_t[edge_index[0]]
    species_t = torch.tensor(species)
    return AtomicGraph(
        node_attrs=torch.nn.functional.one_hot(species_t, len(elements)).to(dtype),
        species=species_t,
        positions=pos_t,
        edge_index=edge_index,
        edge_vectors=edge_vectors,
        edge_lengths=torch.linalg.norm(edge_vectors, dim=-1),
        batch=torch.tensor(batch),
        num_graphs=len(frames),
    )


Readout = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def _dipole(network: AtomisticNetwork, graph: AtomicGraph, readout: Readout = dipole_moment) -> torch.Tensor:
    out = network(graph)
    assert OUT_GRAPH_VECTOR not in out, "the dipole is the shared readout's, not the network's"
    return readout(out[OUT_CHARGES], out[OUT_ATOMIC_DIPOLES], graph.positions, graph.batch, graph.num_graphs)


@pytest.mark.parametrize("case", DIPOLE_CASES)
def test_saved_dipoles_come_back_from_the_per_atom_parts(case: str, ethanol: list[Any]) -> None:
    from safetensors.torch import load_file

    folder = SAVED / case
    saved = json.loads((folder / "config.json").read_text())
    meta = json.loads((folder / "metadata.json").read_text())
    statistics = DatasetStatistics.from_dict(json.loads((folder / "statistics.json").read_text()))
    config_class, build = _family(saved["name"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # renamed fields: see test_shared_hyperparameters
        config = config_class(**saved["config"])
    network = build(config, OutputSpec(**meta["spec"]), statistics)
    network.load_state_dict(load_file(str(folder / "weights.safetensors")))
    network.eval()
    frames = [ethanol[i] for i in (0, 11, 40)]  # the structures of tests/compat/make_saved_models.py
    graph = _graph(frames, meta["element_mapping"]["elements"], config.datamodule.cut_off, torch.float64)
    with torch.no_grad():
        dipole = _dipole(network, graph)
    expected = np.asarray(json.loads((folder / "expected.json").read_text())["dipole"])
    assert np.abs(expected).max() > 1e-3
    # the training module scales the dimensionless dipole by the training data's RMS component
    np.testing.assert_allclose(statistics.graph_vector_rms["dipole"] * dipole.numpy(), expected, rtol=1e-6, atol=1e-6)


def _network(family: str, frames: list[Any]) -> tuple[AtomisticNetwork, AtomicGraph]:
    config_class, build = _family(family)
    config = config_class(datamodule={"cut_off": 4.0}, model_dtype="float64", **DIPOLE_FAMILIES[family])
    spec = OutputSpec(num_elements=3, num_node_features=3, num_graph_scalars=1, graph_vector_dim=3)
    statistics = DatasetStatistics(num_structures=2, num_atoms=18, elements=[1, 6, 8], element_counts=[12, 4, 2], avg_num_neighbours=7.0)
    network = build(config, spec, statistics)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move every weight off its start (zero-initialised heads included)
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return network.eval(), _graph(frames[:2], [1, 6, 8], 4.0, torch.float64)


def _moved(graph: AtomicGraph, rotation: torch.Tensor, shift: torch.Tensor) -> AtomicGraph:
    positions = graph.positions @ rotation.T + shift
    vectors = graph.edge_vectors @ rotation.T
    return AtomicGraph(graph.node_attrs, graph.species, positions, graph.edge_index, vectors, torch.linalg.norm(vectors, dim=-1), graph.batch, graph.num_graphs)


def _check_parts_and_dipole(network: AtomisticNetwork, graph: AtomicGraph, readout: Readout = dipole_moment) -> None:
    """Charges invariant, atomic dipoles and the dipole rotate with the structure and ignore a shift."""
    rotation = torch.tensor(Rotation.from_euler("xyz", [0.4, -1.2, 2.1]).as_matrix())
    moved_graph = _moved(graph, rotation, torch.tensor([1.5, -0.7, 3.0], dtype=torch.float64))
    with torch.no_grad():
        out, moved = network(graph), network(moved_graph)
        dipole, moved_dipole = _dipole(network, graph, readout), _dipole(network, moved_graph, readout)
    n = graph.num_nodes
    assert out[OUT_CHARGES].shape == (n, 1) and out[OUT_ATOMIC_DIPOLES].shape == (n, 3)
    assert out[OUT_CHARGES].abs().min() > 0 and out[OUT_ATOMIC_DIPOLES].norm(dim=1).min() > 0
    assert dipole.shape == (graph.num_graphs, 3) and dipole.norm(dim=1).min() > 1e-3
    torch.testing.assert_close(moved[OUT_CHARGES], out[OUT_CHARGES], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(moved[OUT_ATOMIC_DIPOLES], out[OUT_ATOMIC_DIPOLES] @ rotation.T, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(moved_dipole, dipole @ rotation.T, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("family", sorted(DIPOLE_FAMILIES))
def test_dipole_parts_are_per_atom_and_equivariant(family: str, ethanol: list[Any]) -> None:
    _check_parts_and_dipole(*_network(family, ethanol[::7]))


def test_the_check_fails_for_a_dipole_about_the_origin(ethanol: list[Any]) -> None:
    """A readout that forgets the centroid moves with the structure (the predicted charges do
    not add up to zero), and the check says so."""

    def about_origin(charges: torch.Tensor, atomic: torch.Tensor, positions: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        return scatter_sum(charges * positions + atomic, batch, num_graphs)

    network, graph = _network("painn", ethanol[::7])
    with pytest.raises(AssertionError):
        _check_parts_and_dipole(network, graph, about_origin)
