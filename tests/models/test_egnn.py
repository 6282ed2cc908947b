"""EGNN passes the family contract (symmetries, periodicity, derivatives, save/load)."""

from __future__ import annotations

import torch

from physicsml_like import EGNNModel

from .contract import FamilyContract, check_energy_continuous_at_cutoff


class TestEGNN(FamilyContract):
    model_class = EGNNModel
    arch = {"c_hidden": 16, "num_layers": 2, "num_rbf": 8}

    def test_energy_is_continuous_at_the_cutoff(self, molecule_model: EGNNModel) -> None:
        check_energy_continuous_at_cutoff(molecule_model)

    def test_float64_model_leaves_the_default_dtype_alone(self, molecule_model: EGNNModel) -> None:
        assert torch.get_default_dtype() == torch.float32
        assert all(p.dtype == torch.float64 for p in molecule_model.module.network.parameters())

    def test_every_layer_says_what_it_is(self, molecule_model: EGNNModel) -> None:
        text = repr(molecule_model.module.network)
        assert "trainable weights" in text and "hidden=16" in text and "cutoff=4.0" in text
