"""The wrapper as users drive it: train, predict, save/load, resume, overrides, logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import ase
import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from physicsml_like import ConfigError, DataError, EGNNModel, load_from_dict, load_model
from physicsml_like.training.trainer import find_last_checkpoint

from .helpers import tiny_egnn


def _weights(model: EGNNModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def test_train_returns_self_and_predict_shapes(tmp_path: Path, ethanol: list[ase.Atoms], small_molecules) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, datamodule={"y_node_scalars": ["charges"], "y_graph_vector": "dipole"}))
    assert model.train(ethanol[:32], ethanol[32:48]) is model
    frames = small_molecules[:5]
    frames = [f for f in frames if set(f.numbers) <= {1, 6, 8}][:3] or ethanol[:3]
    out = model.predict(frames)
    assert set(out) == {"energy", "forces", "charges", "dipole"}
    assert out["energy"].shape == (len(frames),) and out["energy"].dtype == np.float64
    assert out["dipole"].shape == (len(frames), 3)
    assert isinstance(out["forces"], list) and [f.shape for f in out["forces"]] == [(len(a), 3) for a in frames]
    assert [c.shape for c in out["charges"]] == [(len(a),) for a in frames]
    frame = model.predict(frames, as_dataframe=True)
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(frames)
    assert frame["energy"].tolist() == pytest.approx(out["energy"].tolist())
    np.testing.assert_allclose(frame["forces"].iloc[1], out["forces"][1])


def test_the_model_seed_sets_the_batch_order_unless_the_datamodule_has_its_own(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    def epoch_orders(seed: int, datamodule: dict | None = None) -> list[list[int]]:
        model = EGNNModel(tiny_egnn(tmp_path, epochs=1, seed=seed, datamodule=datamodule)).train(ethanol[:32])
        sampler = model.trainer.datamodule.sampler("train")
        return [sampler.order(epoch).tolist() for epoch in range(2)]

    seed_one = epoch_orders(1)
    assert seed_one != epoch_orders(2)  # an ensemble's members or a seed study see other batches
    assert seed_one == epoch_orders(1)
    assert epoch_orders(1, {"seed": 5}) == epoch_orders(2, {"seed": 5})


def test_resuming_with_another_shuffle_seed_is_an_error_naming_it(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    EGNNModel(tiny_egnn(tmp_path, epochs=1, seed=1)).train(ethanol[:16])
    other_seed = EGNNModel(tiny_egnn(tmp_path, epochs=2, seed=2))
    with pytest.raises(DataError, match=r"shuffle seed 1 .* now has 2 \(datamodule.seed"):
        other_seed.train(ethanol[:16], ckpt_path="last")


def test_energies_are_absolute_and_close_after_training(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=3)).train(ethanol[:64])
    predicted = model.predict(ethanol[100:110])["energy"]
    labels = np.array([f.get_potential_energy() for f in ethanol[100:110]])
    assert np.abs(predicted - labels).mean() < 0.5  # hundreds of eV absolute, sub-eV error
    assert abs(predicted.mean() - labels.mean()) < 0.5


def test_save_and_load_predict_identically(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path)).train(ethanol[:32])
    path = model.save(tmp_path / "saved")
    assert {p.name for p in path.iterdir()} == {"config.json", "weights.safetensors", "statistics.json", "metadata.json"}
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["name"] == "egnn_model" and "version" in meta and meta["element_mapping"]["elements"] == [1, 6, 8]
    loaded = load_model(path)
    assert isinstance(loaded, EGNNModel)
    a, b = model.predict(ethanol[40:45]), loaded.predict(ethanol[40:45])
    np.testing.assert_array_equal(a["energy"], b["energy"])
    for fa, fb in zip(a["forces"], b["forces"], strict=True):
        np.testing.assert_array_equal(fa, fb)
    # saving again over the folder replaces it whole
    model.save(path)
    assert not list(tmp_path.glob(".saved.*"))


def _interrupting(stop_after_epochs: int) -> L.Callback:
    class StopAfter(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.current_epoch + 1 >= stop_after_epochs:
                trainer.should_stop = True

    return StopAfter()


@pytest.mark.parametrize(
    "technique",
    [{}, {"ema": {"decay": 0.9}}, {"training_module": "config"}, {"training_module": "ema_config", "ema": {"decay": 0.9}}],
    ids=["default", "ema", "config", "ema_config"],
)
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path, ethanol: list[ase.Atoms], technique, monkeypatch) -> None:
    fields = tiny_egnn(tmp_path, epochs=4, dropout=0.1, **technique)
    ema = technique.get("ema")
    frames, val = ethanol[:40], ethanol[40:48]
    straight = EGNNModel(fields).train(frames, val)

    # the same run, stopped after 2 of its 4 epochs, then resumed from its last checkpoint
    from physicsml_like.training import wrapper as wrapper_module

    original = wrapper_module.build_trainer

    def stopping_trainer(*args, **kwargs):
        kwargs["callbacks"] = [_interrupting(2)]
        return original(*args, **kwargs)

    monkeypatch.setattr(wrapper_module, "build_trainer", stopping_trainer)
    interrupted = EGNNModel(fields).train(frames, val)
    monkeypatch.setattr(wrapper_module, "build_trainer", original)
    assert interrupted.trainer.current_epoch == 2
    checkpoint = interrupted.run_dir / "checkpoints" / "last.ckpt"
    resumed = EGNNModel(fields).train(frames, val, ckpt_path=checkpoint)
    assert resumed.trainer.current_epoch == 4
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    if ema:
        assert any("ema_network" in k for k in a)
        # the averaged weights differ from the raw ones and are what prediction uses
        raw = straight.module.network.state_dict()
        averaged = straight.module.ema_network.module.state_dict()
        assert any(not torch.equal(raw[k], averaged[k]) for k in raw)


def test_ckpt_path_last_takes_the_newest_run(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    fields = tiny_egnn(tmp_path, epochs=1)
    first = EGNNModel(fields).train(ethanol[:16])
    last = find_last_checkpoint(tmp_path, "egnn_model")
    assert last.parent.parent == first.run_dir
    more = EGNNModel(fields).train(ethanol[:16], ckpt_path="last", trainer_config={"max_epochs": 2})
    assert more.run_dir == first.run_dir and more.trainer.current_epoch == 2
    with pytest.raises(FileNotFoundError, match="no last.ckpt"):
        EGNNModel(tiny_egnn(tmp_path / "empty")).train(ethanol[:16], ckpt_path="last")


def test_run_without_validation_data_and_its_csv_log(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=2)).train(ethanol[:24])
    metrics = pd.read_csv(model.run_dir / "metrics.csv")
    for column in ("train/loss", "train/energy_mae", "train/forces_rmse", "train/energy_per_atom_mae", "train/grad_norm"):
        assert column in metrics.columns, column
    assert (model.run_dir / "checkpoints" / "last.ckpt").exists()
    assert list((model.run_dir / "checkpoints").glob("best-*.ckpt")), "best by train/loss without validation"


def test_validation_monitor_without_validation_data_is_an_error(tmp_path: Path, ethanol) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, checkpoint={"monitor": "val/forces_mae"}))
    with pytest.raises(ConfigError, match="checkpoint.monitor='val/forces_mae' needs validation data"):
        model.train(ethanol[:16])


def test_per_call_overrides_do_not_stick(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=1))
    model.train(ethanol[:16], trainer_config={"max_epochs": 2}, optimizer_config={"config": {"lr": 1e-4}},
                datamodule_config={"train": {"batch_size": 4}})
    assert model.trainer.current_epoch == 2
    assert model.config.trainer.max_epochs == 1
    assert model.config.optimizer.config["lr"] == 3e-3
    assert model.config.datamodule.train.batch_size == 8
    with pytest.raises(ConfigError, match="trainer.max_epoch"):
        model.train(ethanol[:16], trainer_config={"max_epoch": 3})


def test_loaded_from_a_dict_and_trained_in_float64(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = load_from_dict({"name": "egnn_model", "config": tiny_egnn(tmp_path, epochs=1, model_dtype="float64")})
    model.train(ethanol[:16])
    assert torch.get_default_dtype() == torch.float32
    assert next(model.module.network.parameters()).dtype == torch.float64
    assert model.test(ethanol[20:30])["test/forces_mae"] > 0


def test_debug_logging_prints_the_model(tmp_path: Path, ethanol, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="physicsml_like"):
        EGNNModel(tiny_egnn(tmp_path)).initialise(ethanol[:8])
    assert "EGNNLayer(" in caplog.text and "hidden=16" in caplog.text


def test_a_crash_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    from physicsml_like.training.trainer import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"epoch": 2, "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
