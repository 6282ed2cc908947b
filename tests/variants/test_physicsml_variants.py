"""physicsml's model names resolve to the equivalent model here, and its SSF and adapter
fine-tuning works on MACE (whose linears hold a list of ``weights``) and the other equivariant
families."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
import torch
import yaml

from physicsml_like import (
    ANIModel,
    ConfigError,
    MACEModel,
    NequIPModel,
    TensorNetModel,
    load_from_dict,
    load_from_yaml,
    load_model,
)
from physicsml_like.nn.adapters import insert_adapters
from physicsml_like.training.registry import get_model_class, physicsml_names
from physicsml_like.variants import EnsembleModel

from ..training.helpers import ETHANOL_TARGETS

MACE_ARCH = {"hidden_irreps": "8x0e + 8x1o", "max_ell": 2, "correlation": 2, "num_interactions": 2, "radial_mlp": [16]}


def _fields(root: Path, epochs: int = 1, **extra: object) -> dict[str, object]:
    return {"datamodule": {**ETHANOL_TARGETS, "train": {"batch_size": 8}}, "compute_forces": True,
            "trainer": {"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False},
            "optimizer": {"name": "Adam", "config": {"lr": 1e-2}}, **extra}


def test_physicsml_names_resolve_to_the_configured_family(tmp_path: Path) -> None:
    assert isinstance(load_from_dict({"name": "tensor_net_model", "config": {}}), TensorNetModel)
    mean_var = load_from_dict({"name": "mean_var_mace_model", "config": {**_fields(tmp_path), **MACE_ARCH}})
    assert isinstance(mean_var, MACEModel) and mean_var.config.uncertainty == "mean_var"
    assert mean_var.name == "mace_model", "saved as the family, so it reloads anywhere"
    assert get_model_class("mean_var_tensor_net_model")().config.uncertainty == "mean_var"
    ssf = load_from_dict({"name": "ssf_nequip_model", "config": {"transfer_learning": {
        "pre_trained_model_path": str(tmp_path), "stages": [{"freeze_modules": ["embedding*"]}]}}})
    assert isinstance(ssf, NequIPModel)
    tl = ssf.config.transfer_learning
    assert (tl.adapter, tl.pretrained, tl.stages[0].freeze) == ("ssf", str(tmp_path), ["embedding*"])
    with pytest.warns(UserWarning, match="initial_s is not used"):
        adapter = load_from_dict({"name": "adapter_mace_model", "config": {
            "ratio_adapter_down": 4, "initial_s": 0.01, "transfer_learning": {"pretrained": str(tmp_path)}}})
    assert adapter.config.transfer_learning.adapter == "bottleneck" and adapter.config.transfer_learning.bottleneck_ratio == 4
    ensemble = load_from_dict({"name": "ensemble_ani_model", "config": {"n_models": 3, "which_ani": "ani1"}})
    assert isinstance(ensemble, EnsembleModel) and len(ensemble) == 3
    assert all(isinstance(m, ANIModel) for m in ensemble.members) and [m.config.seed for m in ensemble.members] == [0, 1, 2]
    assert {"tensor_net_model", "ssf_mace_model", "adapter_egnn_model", "mean_var_ani_model", "ensemble_ani_model"} <= set(physicsml_names())


def test_physicsml_names_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ssf_mace_model fine-tunes a saved model with ssf adapters: set transfer_learning.pre_trained_model_path"):
        load_from_dict({"name": "ssf_mace_model", "config": {}})
    with pytest.raises(ConfigError, match="mean_var_egnn_model: uncertainty is 'mean_var' for this model, got None"):
        load_from_dict({"name": "mean_var_egnn_model", "config": {"uncertainty": None}})
    with pytest.raises(ConfigError, match="unknown model name 'mean_var_mace_modl'.*did you mean 'mean_var_mace_model'"):
        load_from_dict({"name": "mean_var_mace_modl"})
    with pytest.raises(ConfigError, match="'ensemble_ani_model' is an ensemble of ani_model members"):
        get_model_class("ensemble_ani_model")


@pytest.fixture(scope="module")
def pretrained_mace(tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms]) -> Path:
    root = tmp_path_factory.mktemp("mace")
    return MACEModel(_fields(root, epochs=1), **MACE_ARCH).train(ethanol[:24]).save(root / "model")


@pytest.mark.parametrize("name", ["ssf_mace_model", "adapter_mace_model"])
def test_a_saved_mace_fine_tunes_with_each_adapter_from_a_physicsml_config(
    tmp_path: Path, pretrained_mace: Path, ethanol: list[ase.Atoms], name: str
) -> None:
    spec = {"name": name, "config": {**_fields(tmp_path, epochs=1), **MACE_ARCH, "transfer_learning": {
        "pre_trained_model_path": str(pretrained_mace), "stages": [{"trainer": {"max_epochs": 1}}]}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(spec))
    model = load_from_yaml(path)
    assert isinstance(model, MACEModel)
    source = load_model(pretrained_mace)
    model.train(ethanol[100:124])
    before, after = source.module.network.state_dict(), model.module.network.state_dict()
    adapters = [k for k in after if k.startswith("adapters.")]
    assert len({k.split(".")[1] for k in adapters}) >= 8, "every MACE linear got an adapter"
    assert all(torch.equal(before[k], after[k]) for k in before), "only adapter weights changed"
    fresh = MACEModel(_fields(tmp_path), **MACE_ARCH, transfer_learning={
        "pretrained": str(pretrained_mace), "adapter": model.config.transfer_learning.adapter,
        "stages": [{"trainer": {"max_epochs": 0}}]}).train(ethanol[100:108])
    np.testing.assert_allclose(fresh.predict(ethanol[:2])["energy"], source.predict(ethanol[:2])["energy"], rtol=0, atol=1e-4)
    start = fresh.module.network.state_dict()
    assert any(not torch.equal(start[k], after[k]) for k in adapters), "the adapters trained"
    tuned = model.predict(ethanol[:2])
    reloaded = load_model(model.save(tmp_path / "tuned")).predict(ethanol[:2])
    np.testing.assert_allclose(reloaded["energy"], tuned["energy"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["ssf", "bottleneck"])
@pytest.mark.parametrize("family", [MACEModel, NequIPModel], ids=["mace", "nequip"])
def test_adapters_keep_equivariant_families_equivariant(ethanol: list[ase.Atoms], family: type, kind: str) -> None:
    from scipy.spatial.transform import Rotation

    arch = MACE_ARCH if family is MACEModel else {"num_layers": 2}
    model = family(datamodule=ETHANOL_TARGETS, compute_forces=True, trainer={"enable_progress_bar": False}, **arch)
    model.initialise(ethanol[:8])
    frame = ethanol[0]
    before = model.predict([frame])["energy"]
    insert_adapters(model.module.network, kind)
    np.testing.assert_allclose(model.predict([frame])["energy"], before, rtol=0, atol=1e-5)  # start: the identity
    with torch.no_grad():
        for name, parameter in model.module.network.named_parameters():
            if name.startswith("adapters."):
                parameter.add_(0.3 * torch.randn_like(parameter))
    rotation = Rotation.random(random_state=3).as_matrix()
    turned = frame.copy()
    turned.positions = frame.positions @ rotation.T
    out = model.predict([frame, turned])
    assert abs(out["energy"][0] - before[0]) > 1e-2, "the perturbed adapters change the prediction"
    assert abs(out["energy"][0] - out["energy"][1]) < 1e-4
    np.testing.assert_allclose(out["forces"][0] @ rotation.T, out["forces"][1], atol=1e-4)
