"""Fine-tuning SevenNet-0 converted into our NequIP: LoRA reaches every linear map and starts
exactly at the pretrained model, and ``load_pretrained(..., transfer_learning={...}).train``
fine-tunes from the converted weights with the adapter, the references refit and replay."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from e3nn import o3

from physicsml_like import ConfigError, NequIPModel, load_model
from physicsml_like.nn.lora import LowRankUpdate, insert_lora
from physicsml_like.pretrained import load_pretrained

pytest.importorskip("sevenn")

# SevenNet-0: the one-hot embedding, linear_1, linear_2 and the shared "linear" self-connection
# of each of its 5 blocks, and the two readout linears; rank 4 per irrep block.
ADAPTED = ["embedding"] + [f"blocks.{t}.{name}" for t in range(5) for name in ("linear_1", "linear_2", "self_connection")] + [
    "energy_head.0", "energy_head.1"]
LORA_WEIGHTS_RANK_4 = 38437


@functools.cache
def _pretrained() -> Any:
    return load_pretrained("sevennet-0")


def _copper(n: int, seed: int) -> list[Atoms]:
    """Labelled 8-atom copper cells (EMT: another level of theory than SevenNet-0's PBE)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.62, cubic=True) * (2, 1, 1)
        atoms.positions += rng.normal(0.0, 0.08, atoms.positions.shape)
        atoms.calc = EMT()
        atoms.get_potential_energy()
        atoms.get_stress()
        frames.append(atoms)
    return frames


def _gold() -> list[Atoms]:
    atoms = bulk("Au", "fcc", a=4.08, cubic=True)
    atoms.rattle(0.05, seed=3)
    return [atoms]


def test_lora_adapts_every_linear_map_of_sevennet_and_starts_at_the_pretrained_model() -> None:
    model = copy.deepcopy(_pretrained())
    network = model.module.network
    linears = [name for name, layer in network.named_modules() if isinstance(layer, o3.Linear | torch.nn.Linear)]
    assert linears == ADAPTED
    frames = _copper(2, seed=0)
    before = model.predict(frames)
    assert insert_lora(network, rank=4, alpha=4.0) == ADAPTED
    updates = [m for m in network.adapters.modules() if isinstance(m, LowRankUpdate)]
    assert sum(p.numel() for p in network.adapters.parameters()) == LORA_WEIGHTS_RANK_4
    assert all(torch.count_nonzero(u.lora_B) == 0 for u in updates) and all(torch.count_nonzero(u.lora_A) for u in updates)
    after = model.predict(frames)
    forces = np.concatenate(before["forces"])
    assert np.abs(forces).max() > 0.05  # rattled: the compared forces are not zero
    np.testing.assert_allclose(after["energy"], before["energy"], rtol=1e-6)
    np.testing.assert_allclose(np.concatenate(after["forces"]), forces, rtol=1e-6, atol=1e-6 * np.abs(forces).max())
    np.testing.assert_allclose(after["stress"], before["stress"], rtol=1e-6, atol=1e-9)
    # the updates are live: a non-zero B moves every prediction
    with torch.no_grad():
        next(u for u in updates if u.lora_B.shape[0] > 1).lora_B.normal_(0.0, 0.1)
    moved = model.predict(frames)
    assert np.abs(np.concatenate(moved["forces"]) - forces).max() > 1e-4


def test_a_converted_model_fine_tunes_with_transfer_learning_options(tmp_path: Path) -> None:
    data = _copper(3, seed=1)
    tl = {"adapter": "lora", "lora_rank": 2, "lora_alpha": 2.0, "refit_references": "residual",
          "replay": {"structures": _gold()}, "stages": [{"trainer": {"max_epochs": 2}}]}
    model = load_pretrained("sevennet-0", transfer_learning=tl, optimizer={"name": "Adam", "config": {"lr": 1e-2}},
                            trainer={"default_root_dir": str(tmp_path), "enable_progress_bar": False},
                            datamodule={"train": {"batch_size": 2}})
    pretrained_network = copy.deepcopy(model.module.network)
    assert not hasattr(pretrained_network, "adapters"), "the converted model holds the plain pretrained network"
    references = dict(model.module.statistics.element_reference)
    before = model.predict(data + _gold())
    model.train(data)
    network = model.module.network
    trainable = {name for name, p in network.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("adapters.") for name in trainable)
    assert all(torch.equal(p, pretrained_network.state_dict()[name]) for name, p in network.state_dict().items() if name in pretrained_network.state_dict())
    assert any(torch.count_nonzero(u.lora_B) for u in network.adapters.modules() if isinstance(u, LowRankUpdate)), "LoRA trained"
    refitted = model.module.statistics.element_reference
    assert abs(refitted[29] - references[29]) > 0.01 and refitted[79] == references[79], "Cu refitted on the residual, Au kept"
    after = model.predict(data + _gold())
    assert np.abs(np.concatenate(after["forces"]) - np.concatenate(before["forces"])).max() > 1e-3
    # saved with its LoRA weights, it loads and predicts the same
    saved = model.save(tmp_path / "tuned")
    np.testing.assert_allclose(load_model(saved).predict(data)["energy"], model.predict(data)["energy"], rtol=1e-6)


def test_fine_tuning_needs_one_start() -> None:
    # a fresh model has no weights to start from: the error names the field
    with pytest.raises(ConfigError, match="transfer_learning.pretrained"):
        NequIPModel(transfer_learning={"adapter": "lora"}).train(_copper(1, seed=2))
    # a converted model is the start: a pretrained folder as well is refused
    converted = load_pretrained("sevennet-0", transfer_learning={"pretrained": "elsewhere", "adapter": "lora"})
    with pytest.raises(ConfigError, match="holds the pretrained weights"):
        converted.train(_copper(1, seed=2))
