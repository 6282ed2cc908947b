"""PaiNN passes the family contract (dipoles and node vectors rotate; it learns forces and
dipoles)."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np

from physicsml_like.models import PaiNNModel

from .contract import (
    MOLECULE_TARGETS,
    AccuracyRun,
    FamilyContract,
    check_energy_continuous_at_cutoff,
    check_symmetries,
    perturbed,
    small_config,
)

ARCH = {"num_features": 8, "num_bessel": 8, "num_layers": 2}


class TestPaiNN(FamilyContract):
    """The molecule model predicts the dipole and charges, so the contract's symmetry check
    covers energy, forces, charges and the dipole."""

    model_class = PaiNNModel
    arch = ARCH
    learning_arch = {"num_features": 64, "num_bessel": 16, "num_layers": 3}
    learning_epochs = 4
    learning_extras = {"y_graph_vector": "dipole"}
    accuracy_runs = (
        AccuracyRun("cu_emt", {"num_features": 32, "num_bessel": 16}, epochs=6, lr=5e-3, train=100,
                    max_force_fraction=0.3, max_stress=0.015,
                    measured="seed 0, one thread, 9 s: forces 0.10 eV/Å (0.14 x zero-force), stress 0.008 eV/Å³"),
    )

    def test_dipole_is_taken_about_the_centroid(self, molecule_model: PaiNNModel, ethanol: list[ase.Atoms]) -> None:
        """The dipole is taken about each structure's centroid, so moving the molecule changes nothing."""
        atoms = ethanol[2]
        moved = atoms.copy()
        moved.positions += [3.0, -2.0, 10.0]
        a, b = molecule_model.predict([atoms, moved])["dipole"]
        np.testing.assert_allclose(a, b, atol=1e-9)

    def test_energy_is_continuous_at_the_cutoff(self, molecule_model: PaiNNModel) -> None:
        check_energy_continuous_at_cutoff(molecule_model)

    def test_every_layer_says_what_it_is(self, molecule_model: PaiNNModel) -> None:
        text = repr(molecule_model.module.network)
        assert "features=8, interactions=2" in text and "trainable weights" in text
        assert "8s+8v -> 4s+4v" in text and "4s+4v -> 1s+1v" in text
        assert "cutoff=4.0, num_basis=8" in text


def test_direct_node_vectors_rotate(ethanol, tmp_path: Path) -> None:
    config = small_config(tmp_path, MOLECULE_TARGETS, model_dtype="float64", compute_forces=False, **ARCH)
    model = perturbed(PaiNNModel(config), ethanol[:10])
    assert model.prediction_kinds()["forces"] == "node_vector"
    check_symmetries(model, ethanol[4])


def test_shared_filters_and_interactions_share_weights(ethanol, tmp_path: Path) -> None:
    def count(**options) -> int:
        config = small_config(tmp_path, MOLECULE_TARGETS, num_features=8, num_bessel=8, num_layers=3, **options)
        network = PaiNNModel(config).initialise(ethanol[:4]).module.network
        return sum(p.numel() for p in network.parameters())

    separate = count()
    filter_weights = 8 * 3 * 8 + 3 * 8  # Linear(num_bessel, 3F)
    assert count(shared_filters=True) == separate - 2 * filter_weights
    block_weights = (8 * 8 + 8 + 8 * 24 + 24) + (8 * 16 + 16 * 8 + 8 + 8 * 24 + 24)  # message + update
    assert count(shared_interactions=True) == separate - 2 * block_weights
