"""EGNN passes the family contract (symmetries, periodicity, derivatives, save/load, learning).

Its energy head starts at zero, so the contract's weight perturbation is what makes its
symmetry and derivative checks able to fail (see test_contract_mutations.py)."""

from __future__ import annotations

import torch

from physicsml_like import EGNNModel

from .contract import AccuracyRun, FamilyContract, check_energy_continuous_at_cutoff


class TestEGNN(FamilyContract):
    model_class = EGNNModel
    arch = {"c_hidden": 16, "num_layers": 2, "num_rbf": 8}
    learning_arch = {"c_hidden": 48, "num_layers": 3, "num_rbf": 16}
    learning_epochs = 12
    learning_lr = 1e-2
    accuracy_runs = (
        AccuracyRun("cu_emt", {"c_hidden": 48, "num_layers": 3, "num_rbf": 16}, epochs=8, train=100,
                    max_force_fraction=0.3, max_stress=0.015,
                    measured="seed 0, one thread, 10 s: forces 0.13 eV/Å (0.18 x zero-force), stress 0.010 eV/Å³"),
    )

    def test_energy_is_continuous_at_the_cutoff(self, molecule_model: EGNNModel) -> None:
        check_energy_continuous_at_cutoff(molecule_model)

    def test_float64_model_leaves_the_default_dtype_alone(self, molecule_model: EGNNModel) -> None:
        assert torch.get_default_dtype() == torch.float32
        assert all(p.dtype == torch.float64 for p in molecule_model.module.network.parameters())

    def test_every_layer_says_what_it_is(self, molecule_model: EGNNModel) -> None:
        text = repr(molecule_model.module.network)
        assert "trainable weights" in text and "hidden=16" in text and "cutoff=4.0" in text
