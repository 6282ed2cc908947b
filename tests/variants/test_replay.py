"""Replay: structures labelled by the pretrained model, mixed into fine-tuning, hold the model
closer to the pretrained one where the new data does not reach (measured with forgetting)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest

from physicsml_like import ConfigError, EGNNModel, load_model
from physicsml_like.config import DataModuleConfig
from physicsml_like.variants import forgetting, replay_table

from .alloys import TARGETS, alloy_cells, relabelled, tiny_fields


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    return EGNNModel(tiny_fields(root, epochs=4)).train(alloy_cells(40, seed=0)).save(root / "model")


def _stiffer_copper(n: int, seed: int) -> list:
    """Copper-only cells of "another level of theory": EMT forces and energies scaled by 1.5."""
    frames = alloy_cells(n, seed=seed, elements=("Cu", "Cu"), rattle=0.12)
    return relabelled(frames, [1.5 * f.get_potential_energy() for f in frames], [1.5 * f.get_forces() for f in frames])


def _gold_rich(n: int, seed: int) -> list:
    return alloy_cells(n, seed=seed, elements=("Au", "Cu"), rattle=0.12)


def _gold(n: int, seed: int) -> list:
    return alloy_cells(n, seed=seed, elements=("Au", "Au"), rattle=0.12)


def test_replay_structures_get_the_pretrained_models_own_labels(pretrained: Path) -> None:
    source = load_model(pretrained)
    structures = _gold_rich(6, seed=7)
    config = DataModuleConfig(**TARGETS)
    table = replay_table(source, structures, config, count=None, fraction=None, seed=0, num_train=10)
    expected = source.predict(structures)
    np.testing.assert_array_equal(table.graph_labels["energy"], expected["energy"])
    np.testing.assert_array_equal(table.node_labels["forces"], np.concatenate(expected["forces"]))
    assert not np.allclose(table.graph_labels["energy"], [f.get_potential_energy() for f in structures]), "not EMT's"
    drawn = replay_table(source, structures, config, count=4, fraction=None, seed=0, num_train=10)
    assert drawn.num_structures == 4
    for k, row in enumerate(drawn.row_ids):  # a drawn subset: each structure keeps its own labels, atom by atom
        alone = source.predict([structures[int(row)]])
        atoms = slice(int(drawn.atom_ptr[k]), int(drawn.atom_ptr[k + 1]))
        np.testing.assert_array_equal(drawn.positions[atoms], structures[int(row)].positions)
        np.testing.assert_allclose(drawn.node_labels["forces"][atoms], alone["forces"][0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(drawn.graph_labels["energy"][k], alone["energy"][0], rtol=1e-12)
    assert replay_table(source, structures, config, count=None, fraction=0.2, seed=0, num_train=10).num_structures == 2


class _StructuresSeen(L.Callback):
    def __init__(self) -> None:
        self.per_epoch: list[int] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.per_epoch.append(0)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: object, batch_idx: int) -> None:
        self.per_epoch[-1] += int(batch.num_graphs)  # type: ignore[attr-defined]


def _tune(root: Path, pretrained: Path, data: list, replay: dict | None, epochs: int) -> tuple[EGNNModel, _StructuresSeen]:
    tl = {"pretrained": str(pretrained), "stages": [{"trainer": {"max_epochs": epochs}}], "replay": replay}
    seen = _StructuresSeen()
    model = EGNNModel(tiny_fields(root, transfer_learning=tl, optimizer={"name": "Adam", "config": {"lr": 5e-3}}))
    return model.train(data, callbacks=[seen]), seen


def test_replay_is_mixed_into_training_and_holds_the_model_in_place(tmp_path: Path, pretrained: Path) -> None:
    source = load_model(pretrained)
    data, replay, elsewhere = _stiffer_copper(16, seed=1), _gold(16, seed=2), _gold(12, seed=3)
    plain, seen_plain = _tune(tmp_path, pretrained, data, None, epochs=6)
    mixed, seen_mixed = _tune(tmp_path, pretrained, data, {"structures": replay, "count": 12}, epochs=6)
    assert seen_plain.per_epoch == [16] * 6 and seen_mixed.per_epoch == [28] * 6
    moved = forgetting(source, plain, elsewhere)
    held = forgetting(source, mixed, elsewhere)
    assert set(moved) == {"energy_mev_per_atom", "forces_mev_per_angstrom", "structures"} and moved["structures"] == 12
    assert moved["energy_mev_per_atom"] > 50, "fine-tuning on stiffer copper moved the model on gold"
    # measured: 188 meV/atom without replay, 37 with. After only 6 epochs the forces on gold have
    # moved more with replay (23 -> 479 meV/A, the same with the cells mixed in by hand); trained
    # to 20 epochs replay holds them (3.6 against 807 meV/A). The replay labels are checked above,
    # so only the energy is asserted at this short run; see docs/variants.md.
    assert held["energy_mev_per_atom"] < 0.5 * moved["energy_mev_per_atom"]
    assert forgetting(source, source, elsewhere)["forces_mev_per_angstrom"] == 0.0
    saved = mixed.save(tmp_path / "mixed")
    recorded = json.loads((saved / "config.json").read_text())["config"]["transfer_learning"]["replay"]["structures"]
    assert recorded == "<list of 16 structures, not saved>"
    np.testing.assert_array_equal(load_model(saved).predict(elsewhere[:2])["energy"], mixed.predict(elsewhere[:2])["energy"])


def test_replay_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="replay.count or replay.fraction, not both"):
        EGNNModel(transfer_learning={"pretrained": str(tmp_path), "replay": {"structures": "x.xyz", "count": 2, "fraction": 0.5}})
    with pytest.raises(ConfigError, match="count"):
        EGNNModel(transfer_learning={"pretrained": str(tmp_path), "replay": {"structures": "x.xyz", "count": 0}})


def test_replay_structures_in_memory_survive_config_updates_and_save_as_a_description() -> None:
    """``updated`` (used by stage and trainer overrides) keeps a list of structures; only the
    saved (JSON) form replaces it by a description."""
    from physicsml_like.config.training import TransferLearningConfig

    cells = alloy_cells(3, seed=2)
    config = TransferLearningConfig(replay={"structures": cells, "count": 2})
    updated = config.updated({"replay": {"count": 1}})
    assert updated.replay is not None and updated.replay.structures is not None
    assert len(updated.replay.structures) == 3 and updated.replay.count == 1
    saved = config.model_dump(mode="json")["replay"]["structures"]
    assert isinstance(saved, str) and "3 structures" in saved
    assert config.updated({}).replay.structures[0] is not None
