"""Configs reject what is wrong with one error naming the field; families resolve by name."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
import yaml

from physicsml_like import ConfigError, EGNNModel, EGNNModelConfig, load_from_dict, load_from_yaml
from physicsml_like.training import available_models, default_dtype, model_builder, registry

FORCES = {"datamodule": {"y_graph_scalars": ["energy"], "y_node_vector": "forces"}, "compute_forces": True}


def test_unknown_and_wrong_fields_name_the_field_and_value() -> None:
    with pytest.raises(ConfigError, match=r"c_hiden: unknown field.*did you mean 'c_hidden'"):
        EGNNModel(c_hiden=32)
    with pytest.raises(ConfigError, match=r"num_layers: .*greater than 0.*got -2"):
        EGNNModel(num_layers=-2)
    with pytest.raises(ConfigError, match=r"trainer.max_epoch: unknown field.*did you mean 'max_epochs'"):
        EGNNModel(trainer={"max_epoch": 3})
    with pytest.raises(ConfigError, match=r"optimizer.name: .*'Adamm' is not a torch.optim optimiser"):
        EGNNModel(optimizer={"name": "Adamm"})
    with pytest.raises(ConfigError, match=r"scheduler.name: .*not a torch.optim.lr_scheduler"):
        EGNNModel(scheduler={"name": "Cosine"})
    with pytest.raises(ConfigError, match=r"checkpoint.monitor: .*metric names look like"):
        EGNNModel(checkpoint={"monitor": "forces_mae"})
    with pytest.raises(ConfigError, match=r"pool_type: .*'sum' or 'mean'.*'max'"):
        EGNNModel(pool_type="max")


def test_inconsistent_settings_are_rejected() -> None:
    with pytest.raises(ConfigError, match="compute_forces / compute_stress need an energy"):
        EGNNModel(compute_forces=True)
    with pytest.raises(ConfigError, match="y_stress='stress' is set but compute_stress is False"):
        EGNNModel(datamodule={"y_graph_scalars": ["energy"], "y_stress": "stress"})
    with pytest.raises(ConfigError, match="losses has an entry for 'force'.*targets are \\['energy', 'forces'\\]"):
        EGNNModel(**FORCES, losses={"force": {"weight": 10}})
    with pytest.raises(ConfigError, match="'64-true' needs model_dtype 'float64'"):
        EGNNModel(trainer={"precision": "64-true"})
    with pytest.raises(ConfigError, match="energy_target 'U0' is not one of"):
        EGNNModel(datamodule={"y_graph_scalars": ["energy"]}, energy_target="U0")


def test_every_target_gets_a_loss() -> None:
    config = EGNNModelConfig(
        datamodule={"y_graph_scalars": ["energy", "homo"], "y_node_vector": "forces", "y_node_scalars": ["charges"],
                    "y_graph_vector": "dipole", "y_stress": "stress"},
        compute_forces=True, compute_stress=True, losses={"forces": {"name": "huber", "weight": 5.0}},
    )
    losses = config.resolved_losses()
    assert set(losses) == {"energy", "homo", "forces", "charges", "dipole", "stress"}
    assert losses["forces"].name == "huber" and losses["forces"].weight == 5.0
    assert losses["energy"].per_atom and losses["energy"].weight == 1.0
    assert not losses["homo"].per_atom and losses["stress"].weight == 10.0
    assert all(loss.weight > 0 for loss in losses.values())
    assert config.target_kinds()["forces"] == "forces" and config.energy_key == "energy"


def test_model_from_dict_and_yaml(tmp_path: Path) -> None:
    model = load_from_dict({"name": "egnn_model", "config": {**FORCES, "c_hidden": 24}})
    assert isinstance(model, EGNNModel) and model.config.c_hidden == 24
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"name": "egnn_model", "config": {**FORCES, "num_layers": 5}}))
    assert load_from_yaml(path).config.num_layers == 5
    with pytest.raises(ConfigError, match="unknown model name 'egnn'.*did you mean 'egnn_model'"):
        load_from_dict({"name": "egnn", "config": {}})
    with pytest.raises(ConfigError, match="config.*num_layer|num_layer"):
        load_from_dict({"name": "egnn_model", "config": {"num_layer": 3}})


def test_other_packages_add_families_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    class PluginModel(EGNNModel):
        pass

    import sys
    import types

    module = types.ModuleType("fake_plugin")
    module.PluginModel = PluginModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_plugin", module)
    fake = EntryPoint(name="plugin_model", value="fake_plugin:PluginModel", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [fake] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ENTRY_POINTS", dict(registry._ENTRY_POINTS))  # the fake is gone after the test
    assert "plugin_model" in available_models()
    assert isinstance(load_from_dict({"name": "plugin_model", "config": FORCES}), PluginModel)


def test_model_builder_restores_dtype_and_random_state_even_on_error() -> None:
    state = torch.get_rng_state()

    @model_builder
    def broken(config: object) -> torch.nn.Module:
        assert torch.get_default_dtype() == torch.float64
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        broken(EGNNModelConfig(model_dtype="float64"))
    assert torch.get_default_dtype() == torch.float32
    assert torch.equal(torch.get_rng_state(), state)

    @model_builder
    def linear(config: object) -> torch.nn.Module:
        return torch.nn.Linear(3, 3)

    a = linear(EGNNModelConfig(seed=1))
    b = linear(EGNNModelConfig(seed=1))
    c = linear(EGNNModelConfig(seed=2))
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    with default_dtype(torch.float64):
        assert torch.get_default_dtype() == torch.float64
    assert torch.get_default_dtype() == torch.float32
