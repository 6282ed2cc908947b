"""LoRA fine-tuning: low-rank updates of the linear maps start at the pretrained model exactly,
train alone, keep equivariant families equivariant, count the weights they should, and survive
saving."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
import torch
from e3nn import o3
from torch import nn

from physicsml_like import ConfigError, MACEModel, NequIPModel, load_model
from physicsml_like.nn import lora as lora_module
from physicsml_like.nn.adapters import insert_adapters
from physicsml_like.nn.lora import insert_lora, lora_matrices

from ..training.helpers import ETHANOL_TARGETS

MACE_ARCH = {"hidden_irreps": "8x0e + 8x1o", "max_ell": 2, "correlation": 2, "num_interactions": 2, "radial_mlp": [16]}
NEQUIP_ARCH = {"num_layers": 2, "num_features": 8, "max_ell": 1, "radial_mlp": [16]}
FAMILIES = {"mace": (MACEModel, MACE_ARCH), "nequip": (NequIPModel, NEQUIP_ARCH)}


def _fields(root: Path, epochs: int = 1, **extra: object) -> dict[str, object]:
    return {"datamodule": {**ETHANOL_TARGETS, "train": {"batch_size": 8}}, "compute_forces": True, "model_dtype": "float64",
            "trainer": {"max_epochs": epochs, "default_root_dir": str(root), "enable_progress_bar": False, "precision": 64},
            "optimizer": {"name": "Adam", "config": {"lr": 1e-2}}, "scheduler": None, **extra}


@pytest.fixture(scope="module", params=list(FAMILIES))
def pretrained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ethanol: list[ase.Atoms]) -> tuple[str, Path]:
    family, arch = FAMILIES[request.param]
    root = tmp_path_factory.mktemp(f"lora_{request.param}")
    return request.param, family(_fields(root), **arch).train(ethanol[:16]).save(root / "model")


def _lora_tune(root: Path, pretrained: tuple[str, Path], epochs: int, **tl: object) -> MACEModel | NequIPModel:
    name, path = pretrained
    family, arch = FAMILIES[name]
    transfer = {"pretrained": str(path), "adapter": "lora", "lora_rank": 2, "stages": [{"trainer": {"max_epochs": epochs}}], **tl}
    return family(_fields(root), **arch, transfer_learning=transfer)


def _expected_lora_weights(network: nn.Module, rank: int) -> int:
    """``min(rank, in, out) * (in + out)`` summed over the weight matrices of the linear maps,
    read from the layers themselves (not from the LoRA modules)."""
    total = 0
    for name, layer in network.named_modules():
        if name.startswith("adapters"):
            continue
        if isinstance(layer, nn.Linear):
            shapes = [(layer.in_features, layer.out_features)]
        elif isinstance(layer, o3.Linear):
            shapes = [tuple(ins.path_shape) for ins in layer.instructions]
        elif hasattr(layer, "channels_out") and isinstance(getattr(layer, "weights", None), nn.ParameterList):
            shapes = [tuple(w.shape) for w in layer.weights]
        else:
            continue
        total += sum(min(rank, a, b) * (a + b) for a, b in shapes)
    return total


@pytest.mark.filterwarnings("ignore:nothing was trained")  # the 0-epoch run compares the start
def test_lora_starts_at_the_pretrained_model_trains_alone_and_saves(
    tmp_path: Path, pretrained: tuple[str, Path], ethanol: list[ase.Atoms]
) -> None:
    source = load_model(pretrained[1])
    frames = ethanol[580:583]
    expected = source.predict(frames)
    start = _lora_tune(tmp_path, pretrained, epochs=0).train(ethanol[100:108])
    got = start.predict(frames)
    np.testing.assert_allclose(got["energy"], expected["energy"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.concatenate(got["forces"]), np.concatenate(expected["forces"]), rtol=0, atol=1e-10)

    model = _lora_tune(tmp_path, pretrained, epochs=1).train(ethanol[100:124])
    network = model.module.network
    before, after, initial = source.module.network.state_dict(), network.state_dict(), start.module.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "pretrained weights unchanged"
    lora_b = [k for k in after if k.startswith("adapters.") and k.endswith("lora_B")]
    assert lora_b and all(not torch.any(initial[k]) for k in lora_b), "B starts at zero"
    assert sum(bool(torch.any(after[k])) for k in lora_b) > len(lora_b) // 2, "most B matrices trained"
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    adapters = sum(p.numel() for n, p in network.named_parameters() if n.startswith("adapters."))
    assert adapters == _expected_lora_weights(network, rank=2)
    assert trainable == adapters, "only the LoRA weights train (the base stays frozen after training too)"
    assert model.predict(frames)["energy"][0] != pytest.approx(expected["energy"][0], abs=1e-8), "the updates act"
    reloaded = load_model(model.save(tmp_path / "tuned"))
    np.testing.assert_allclose(reloaded.predict(frames)["energy"], model.predict(frames)["energy"], rtol=0, atol=1e-10)


def test_only_lora_weights_are_trainable_during_fine_tuning(tmp_path: Path, pretrained: tuple[str, Path], ethanol) -> None:
    import lightning as L

    seen: list[int] = []

    class Count(L.Callback):
        def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            network = module.network  # type: ignore[attr-defined]
            seen.append(sum(p.numel() for p in network.parameters() if p.requires_grad))
            seen.append(_expected_lora_weights(network, rank=2))

    _lora_tune(tmp_path, pretrained, epochs=1).train(ethanol[100:108], callbacks=[Count()])
    assert seen[0] == seen[1] > 0


def test_lora_counts_rank_times_in_plus_out_per_matrix() -> None:
    mlp = nn.Sequential(nn.Linear(6, 5), nn.SiLU(), nn.Linear(5, 1))
    insert_lora(mlp, rank=2)
    assert sum(p.numel() for n, p in mlp.named_parameters() if n.startswith("adapters.")) == 2 * (6 + 5) + 1 * (5 + 1)
    linear = nn.Sequential(o3.Linear("4x0e + 3x1o", "2x0e + 5x1o"))
    assert [(m.n_in, m.n_out) for m in lora_matrices(linear[0])] == [(4, 2), (3, 5)]
    insert_lora(linear, rank=2, alpha=1.0)
    assert sum(p.numel() for n, p in linear.named_parameters() if n.startswith("adapters.")) == 2 * 6 + 2 * 8
    assert linear.adapters["0"].updates[0].scale == 0.5, "alpha / rank"
    from physicsml_like.models.tensornet.layers import TensorLinear

    assert [(m.n_in, m.n_out, m.transposed) for m in lora_matrices(TensorLinear(3, 5))] == [(3, 5, False)]
    assert lora_matrices(nn.SiLU()) == [] and lora_matrices(o3.FullyConnectedTensorProduct("2x0e", "2x0e", "2x0e")) == []


def test_lora_update_is_exactly_the_low_rank_product() -> None:
    holder = nn.Module()
    holder.linear = o3.Linear("4x0e + 3x1o", "2x0e + 5x1o")
    x = torch.randn(7, holder.linear.irreps_in.dim)
    base = holder.linear(x)
    insert_lora(holder, rank=2, alpha=3.0)
    update = holder.adapters["linear"]
    with torch.no_grad():
        for u in update.updates:
            u.lora_B.normal_()
    reference = o3.Linear("4x0e + 3x1o", "2x0e + 5x1o")
    deltas = [(u.lora_B @ u.lora_A * 1.5).t().reshape(-1) for u in update.updates]
    with torch.no_grad():
        reference.weight.copy_(holder.linear.weight + torch.cat(deltas))
    torch.testing.assert_close(holder.linear(x), reference(x))
    assert not torch.allclose(holder.linear(x), base)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_lora_keeps_equivariant_families_equivariant(ethanol: list[ase.Atoms], name: str) -> None:
    from scipy.spatial.transform import Rotation

    family, arch = FAMILIES[name]
    model = family(datamodule=ETHANOL_TARGETS, compute_forces=True, trainer={"enable_progress_bar": False}, model_dtype="float64", **arch)
    model.initialise(ethanol[:8])
    frame = ethanol[0]
    before = model.predict([frame])
    adapted = insert_adapters(model.module.network, "lora", lora_rank=3)
    assert any("interaction" in n or "blocks" in n for n in adapted)
    np.testing.assert_array_equal(model.predict([frame])["energy"], before["energy"])  # B = 0: exactly the start
    generator = torch.Generator().manual_seed(0)  # not the global stream: other tests move it
    with torch.no_grad():
        for key, parameter in model.module.network.named_parameters():
            if key.startswith("adapters.") and key.endswith("lora_B"):
                parameter.normal_(0, 0.5, generator=generator)
    rotation = Rotation.random(random_state=3).as_matrix()
    turned = frame.copy()
    turned.positions = frame.positions @ rotation.T
    out = model.predict([frame, turned])
    assert abs(out["energy"][0] - before["energy"][0]) > 1e-2, "the perturbed updates change the prediction"
    assert np.abs(out["forces"][0] - before["forces"][0]).max() > 1e-2
    assert abs(out["energy"][0] - out["energy"][1]) < 1e-9
    np.testing.assert_allclose(out["forces"][0] @ rotation.T, out["forces"][1], rtol=0, atol=1e-9)


@pytest.mark.filterwarnings("ignore:nothing was trained")
def test_a_lora_not_starting_at_zero_is_caught(
    tmp_path: Path, pretrained: tuple[str, Path], ethanol: list[ase.Atoms], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutation: with B drawn at random the start differs from the pretrained model, and the
    start check of the first test fails."""
    original = lora_module.LowRankUpdate.__init__

    def random_b(self: lora_module.LowRankUpdate, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        nn.init.normal_(self.lora_B, std=0.1)

    monkeypatch.setattr(lora_module.LowRankUpdate, "__init__", random_b)
    expected = load_model(pretrained[1]).predict(ethanol[580:581])["energy"]
    got = _lora_tune(tmp_path, pretrained, epochs=0).train(ethanol[100:108]).predict(ethanol[580:581])["energy"]
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_lora_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lora_rank / lora_alpha apply to adapter='lora'"):
        MACEModel(transfer_learning={"pretrained": str(tmp_path), "adapter": "ssf", "lora_rank": 8})
    with pytest.raises(ConfigError, match="lora_rank"):
        MACEModel(transfer_learning={"pretrained": str(tmp_path), "adapter": "lora", "lora_rank": 0})
    with pytest.raises(ValueError, match="no layer matching adapter targets"):
        insert_lora(nn.Sequential(nn.Linear(2, 2)), targets=["nothing*"])
