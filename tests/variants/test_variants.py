"""Variants on any family: mean-variance uncertainty, deep ensembles, fine-tuning with stages,
frozen parts and adapters. Each trains, predicts, saves and loads."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pandas as pd
import pytest
import torch

from physicsml_like import ConfigError, EGNNModel, load_model
from physicsml_like.variants import EnsembleModel

from ..training.helpers import tiny_egnn


@pytest.fixture(scope="module")
def far_molecules(small_molecules: list[ase.Atoms]) -> list[ase.Atoms]:
    """Held-out molecules unlike ethanol's MD frames, but made of the same elements."""
    frames = [f for f in small_molecules if set(f.numbers) <= {1, 6, 8} and len(f) >= 5]
    return [f for f in frames if f.info.get("smiles") != "CCO"][:16]


def _per_atom(values: np.ndarray, frames: list[ase.Atoms]) -> np.ndarray:
    return values / np.array([len(f) for f in frames])


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms]) -> Path:
    root = tmp_path_factory.mktemp("pretrain")
    fields = tiny_egnn(root, epochs=6, c_hidden=32, num_rbf=16)
    model = EGNNModel(fields).train(ethanol[:160], ethanol[500:540])
    return model.save(root / "model")


def test_mean_variance_model_predicts_std_and_calibrated_intervals(tmp_path: Path, ethanol) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=6, uncertainty="mean_var",
                                datamodule={"y_node_scalars": ["charges"]}))
    assert model.config.resolved_losses()["energy"].name == "gaussian_nll"
    model.train(ethanol[:120], ethanol[500:520])
    held_out = ethanol[520:600]
    near = model.predict(held_out, return_std=True, confidence=0.9)
    assert {"energy_std", "energy_lower", "energy_upper", "charges_std"} <= set(near)
    assert "forces_std" not in near  # forces are derivatives of the mean energy
    assert np.all(near["energy_lower"] < near["energy"]) and np.all(near["energy"] < near["energy_upper"])
    assert np.all(near["energy_std"] > 0) and near["charges_std"][0].shape == (9,)
    # the intervals mean what they say: about 90 % of held-out labels fall inside them
    labels = np.array([f.get_potential_energy() for f in held_out])
    inside = np.mean((labels > near["energy_lower"]) & (labels < near["energy_upper"]))
    assert 0.65 < inside <= 1.0
    path = model.save(tmp_path / "mv")
    again = load_model(path).predict(held_out[:4], return_std=True)
    np.testing.assert_allclose(again["energy_std"], near["energy_std"][:4], rtol=1e-6)
    with pytest.raises(ConfigError, match="need a model with uncertainty"):
        EGNNModel(tiny_egnn(tmp_path, epochs=1)).train(ethanol[:8]).predict(ethanol[:2], return_std=True)
    with pytest.raises(ConfigError, match="gaussian_nll needs a variance head"):
        EGNNModel(tiny_egnn(tmp_path, losses={"energy": {"name": "gaussian_nll"}}))


def test_ensemble_trains_predicts_saves_and_knows_what_it_does_not_know(tmp_path: Path, ethanol, far_molecules) -> None:
    ensemble = EnsembleModel(EGNNModel(tiny_egnn(tmp_path, epochs=10, c_hidden=32, num_rbf=16)), n_members=3)
    assert [m.config.seed for m in ensemble.members] == [0, 1, 2]
    ensemble.train(ethanol[:160])
    near = ensemble.predict(ethanol[520:540], confidence=0.95)
    far = ensemble.predict(far_molecules)
    assert set(near) >= {"energy", "energy_std", "forces", "forces_std", "energy_lower", "energy_upper"}
    members = [m.predict(ethanol[520:540])["energy"] for m in ensemble.members]
    np.testing.assert_allclose(near["energy"], np.mean(members, axis=0))
    np.testing.assert_allclose(near["energy_std"], np.std(members, axis=0, ddof=1))
    assert near["forces_std"][0].shape == (9, 3)
    # measured: 0.30 eV/atom on the far molecules against 0.006 on held-out ethanol frames
    assert _per_atom(far["energy_std"], far_molecules).mean() > 5 * _per_atom(near["energy_std"], ethanol[520:540]).mean()
    path = ensemble.save(tmp_path / "ensemble")
    loaded = load_model(path)
    assert isinstance(loaded, EnsembleModel) and len(loaded) == 3
    np.testing.assert_array_equal(loaded.predict(ethanol[520:524])["energy"], ensemble.predict(ethanol[520:524])["energy"])
    frame = ensemble.predict(ethanol[520:524], as_dataframe=True)
    assert isinstance(frame, pd.DataFrame) and "energy_std" in frame.columns


def _first_val_forces_mae(model: EGNNModel) -> float:
    metrics = pd.read_csv(model.run_dir / "metrics.csv").dropna(subset=["val/forces_mae"])
    return float(metrics["val/forces_mae"].iloc[0])


def test_fine_tuning_starts_from_the_old_accuracy(tmp_path: Path, pretrained: Path, ethanol) -> None:
    new_data, val = ethanol[300:380], ethanol[540:570]
    old_error = load_model(pretrained).test(val)["test/forces_mae"]
    arch = {"c_hidden": 32, "num_rbf": 16}
    tuned = EGNNModel(tiny_egnn(tmp_path, epochs=1, **arch, transfer_learning={"pretrained": str(pretrained)}))
    tuned.train(new_data, val)
    fresh = EGNNModel(tiny_egnn(tmp_path, epochs=1, **arch)).train(new_data, val)
    assert _first_val_forces_mae(tuned) < 1.15 * old_error
    assert _first_val_forces_mae(tuned) < 0.8 * _first_val_forces_mae(fresh)


def test_stages_freeze_what_they_name(tmp_path: Path, pretrained: Path, ethanol) -> None:
    arch = {"c_hidden": 32, "num_rbf": 16}
    stages = [
        {"freeze": ["embedding", "layers.0*"], "trainer": {"max_epochs": 1}, "optimizer": {"config": {"lr": 1e-3}}},
        {"trainer": {"max_epochs": 1}},
    ]
    before = load_model(pretrained).module.network.state_dict()
    model = EGNNModel(tiny_egnn(tmp_path, **arch, transfer_learning={"pretrained": str(pretrained), "stages": [stages[0]]}))
    model.train(ethanol[300:340])
    after = model.module.network.state_dict()
    assert torch.equal(before["embedding.weight"], after["embedding.weight"])
    assert torch.equal(before["layers.0.phi_e.0.weight"], after["layers.0.phi_e.0.weight"])
    assert not torch.equal(before["layers.1.phi_e.0.weight"], after["layers.1.phi_e.0.weight"])
    assert all(p.requires_grad for p in model.module.network.parameters()), "unfrozen after the stages"
    two = EGNNModel(tiny_egnn(tmp_path, **arch, transfer_learning={"pretrained": str(pretrained), "stages": stages}))
    two.train(ethanol[300:340])
    assert not torch.equal(before["embedding.weight"], two.module.network.state_dict()["embedding.weight"])


@pytest.mark.filterwarnings("ignore:nothing was trained")  # 0-epoch stages on purpose: the start is compared
@pytest.mark.parametrize("adapter", ["ssf", "bottleneck"])
def test_adapters_start_at_the_pretrained_model_and_train_alone(tmp_path: Path, pretrained: Path, ethanol, adapter: str) -> None:
    arch = {"c_hidden": 32, "num_rbf": 16}
    source = load_model(pretrained)
    tl = {"pretrained": str(pretrained), "adapter": adapter, "stages": [{"trainer": {"max_epochs": 0}}]}
    untouched = EGNNModel(tiny_egnn(tmp_path, **arch, transfer_learning=tl)).train(ethanol[300:310])
    np.testing.assert_allclose(untouched.predict(ethanol[:3])["energy"], source.predict(ethanol[:3])["energy"], atol=1e-4)
    tl["stages"] = [{"trainer": {"max_epochs": 2}}]
    model = EGNNModel(tiny_egnn(tmp_path, **arch, transfer_learning=tl)).train(ethanol[300:340])
    network = model.module.network
    before = source.module.network.state_dict()
    after = network.state_dict()
    base = [k for k in before if k in after]
    assert all(torch.equal(before[k], after[k]) for k in base), "pretrained weights unchanged"
    adapted = [k for k in after if k.startswith("adapters.")]
    assert adapted and any(not torch.equal(after[k], untouched.module.network.state_dict()[k]) for k in adapted)
    assert sum(p.numel() for n, p in network.named_parameters() if n.startswith("adapters.")) < 0.3 * sum(
        p.numel() for p in network.parameters())
    path = model.save(tmp_path / f"tuned_{adapter}")
    np.testing.assert_array_equal(load_model(path).predict(ethanol[:3])["energy"], model.predict(ethanol[:3])["energy"])


@pytest.mark.filterwarnings("ignore:nothing was trained")  # 0-epoch stages on purpose: the start is compared
def test_sub_modules_mapped_by_name_into_a_model_with_a_new_head(tmp_path: Path, pretrained: Path, ethanol) -> None:
    arch = {"c_hidden": 32, "num_rbf": 16}
    model = EGNNModel(tiny_egnn(tmp_path, **arch, datamodule={"y_node_scalars": ["charges"]},
                                transfer_learning={"pretrained": str(pretrained), "stages": [{"trainer": {"max_epochs": 0}}]}))
    model.train(ethanol[300:310])
    source = load_model(pretrained).module.network.state_dict()
    network = model.module.network.state_dict()
    assert torch.equal(source["layers.1.phi_h.0.weight"], network["layers.1.phi_h.0.weight"])
    assert "node_scalar_head.0.weight" in network and "node_scalar_head.0.weight" not in source
    renamed = EGNNModel(tiny_egnn(tmp_path, **arch, transfer_learning={
        "pretrained": str(pretrained), "modules_to_match": {"layers.1": "layers.0"}, "stages": [{"trainer": {"max_epochs": 0}}]}))
    renamed.train(ethanol[300:310])
    assert torch.equal(source["layers.0.phi_h.0.weight"], renamed.module.network.state_dict()["layers.1.phi_h.0.weight"])
