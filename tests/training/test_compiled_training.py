"""compile_training: the compiled training step trains to eager's weights, logs the same
metrics, and steps aside (eagerly, with a warning or an error) where it cannot compile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import ase
import pandas as pd
import pytest
import torch

from physicsml_like import EGNNModel, MACEModel, NequIPModel
from physicsml_like.errors import ConfigError

from .helpers import ETHANOL_TARGETS, tiny_egnn

ROOT = Path(__file__).resolve().parents[2]


def tiny_mace(root: Path, **fields: Any) -> MACEModel:
    """A float64 MACE small enough to compile in well under a minute."""
    datamodule = fields.pop("datamodule", {**ETHANOL_TARGETS, "train": {"batch_size": 4}})
    return MACEModel(
        datamodule=datamodule,
        compute_forces=True, model_dtype="float64", hidden_irreps="4x0e + 4x1o", max_ell=1, correlation=2,
        num_interactions=1, num_bessel=4, radial_mlp=[8], mlp_irreps="4x0e",
        losses={"energy": {"weight": 1.0}, "forces": {"weight": 10.0}},
        optimizer={"name": "Adam", "config": {"lr": 1e-2}}, scheduler=None,
        trainer={"max_epochs": 2, "default_root_dir": str(root), "enable_progress_bar": False,
                 "log_every_n_steps": 1},
        **fields,
    )


def logged(root: Path) -> pd.DataFrame:
    (metrics,) = root.rglob("metrics.csv")
    return pd.read_csv(metrics)


def test_compiled_training_gives_eager_weights_and_metrics(tmp_path: Path, small_molecules: list[ase.Atoms]) -> None:
    data = small_molecules[:16]  # 4 batches of 4 (one layout, sizes symbolic), 2 epochs: 8 Adam steps
    assert len({len(atoms) for atoms in data}) > 3  # the batches differ in atoms and edges
    eager = tiny_mace(tmp_path / "eager").train(data)
    compiled = tiny_mace(tmp_path / "compiled", compile_training=True)
    compiled.train(data)
    assert compiled.module.compiled_step is not None and compiled.module.compiled_step.refused is None
    entries = compiled.module.compiled_step.entries
    assert sum(len(e) for e in entries.values()) == 1  # recorded once, for batches of every size
    initial = tiny_mace(tmp_path / "initial").initialise(data).module.network.state_dict()
    moved = 0.0
    for name, weight in eager.module.network.state_dict().items():
        torch.testing.assert_close(compiled.module.network.state_dict()[name], weight, rtol=1e-9, atol=1e-10, msg=name)
        moved = max(moved, float((weight - initial[name]).abs().max()))
    assert moved > 1e-3  # the steps changed the weights: the comparison is not of two initial states
    rows = {k: logged(tmp_path / k) for k in ("eager", "compiled")}
    for column in ("train/loss_step", "train/loss", "train/forces_mae", "train/energy_rmse"):
        a, b = (rows[k][column].dropna().to_numpy() for k in ("eager", "compiled"))
        assert len(a) >= 2 and (a > 0).all()
        torch.testing.assert_close(torch.as_tensor(b), torch.as_tensor(a), rtol=1e-6, atol=0.0, msg=column)
    predicted = {k: m.predict(data[:2])["forces"][0] for k, m in (("eager", eager), ("compiled", compiled))}
    torch.testing.assert_close(torch.as_tensor(predicted["compiled"]), torch.as_tensor(predicted["eager"]))


def test_a_step_that_draws_random_numbers_trains_eagerly(tmp_path: Path, ethanol: list[ase.Atoms]) -> None:
    model = EGNNModel(tiny_egnn(tmp_path, epochs=1, dropout=0.2, compile_training=True))
    with pytest.warns(RuntimeWarning, match=r"not compiled \(it draws random numbers .*dropout"):
        model.train(ethanol[:16])
    step = model.module.compiled_step
    assert step is not None and step.refused is not None and not step.entries


def test_a_stress_loss_trains_eagerly(tmp_path: Path, cu_frames: list[ase.Atoms]) -> None:
    model = tiny_mace(tmp_path, compile_training=True, compute_stress=True,
                      datamodule={**ETHANOL_TARGETS, "y_stress": "stress", "train": {"batch_size": 4}})
    with pytest.warns(RuntimeWarning, match="not compiled .the stress loss compares only"):
        model.train(cu_frames[:4])
    assert model.module.compiled_step is not None and not model.module.compiled_step.entries


def test_compile_training_refuses_conflict_free_updates_and_a_known_compiler_defect(ethanol: list[ase.Atoms]) -> None:
    with pytest.raises(ConfigError, match="compile_training compiles the plain training step"):
        EGNNModel(training_module="config", compile_training=True)
    with pytest.raises(ConfigError, match="compile_training is refused for NequIP: inductor .* heap corruption"):
        NequIPModel(datamodule=ETHANOL_TARGETS, compute_forces=True, num_features=4, num_layers=2, max_ell=1,
                    compile_training=True).initialise(ethanol[:4])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["egnn", "painn", "tensornet", "ani", "mace", "allegro"])
def test_every_family_trains_compiled_to_eager_weights(family: str, tmp_path: Path) -> None:
    """One epoch of each family's small float64 model (4 Adam steps), eager and compiled, in a
    process of its own (a compiler crash fails this family's test only)."""
    done = subprocess.run([sys.executable, "-m", "tests.training.scripts.compiled_vs_eager", family, str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{family}: {done.stderr[-3000:]}"
    result = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{")))
    assert result["max_weight_change"] > 1e-3  # training moved the weights: not two initial states compared
    assert result["max_weight_difference"] < 1e-9 * result["max_weight"], result
