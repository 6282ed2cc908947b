"""Typed targets: physicsml's datamodule fields map to one target each, and each target scales,
reads out, assembles and names its own predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from physicsml_like import EGNNModel, PaiNNModel
from physicsml_like.config import DataModuleConfig
from physicsml_like.config.targets import targets_from_config
from physicsml_like.nn.graph import OUT_EDGE_SCALARS
from physicsml_like.targets import EdgeScalar, Energy, output_spec

SMILES = ["CCO", "C=O", "CC(=O)O", "c1ccccc1", "CCN", "CCC"]


def test_each_physicsml_field_becomes_one_typed_target() -> None:
    dm = DataModuleConfig(
        y_graph_scalars=["energy", "gap"], y_graph_vector="dipole", y_node_scalars=["charges"],
        y_node_vector="forces", y_edge_scalars=["order"], y_edge_vector="bond", y_stress="stress",
    )
    targets = targets_from_config(dm, energy_key="energy", compute_forces=True, compute_stress=True, uncertainty="mean_var")
    kinds = {t.name: (t.kind, t.level, t.column, t.variance_column) for t in targets}
    assert kinds == {
        "energy": ("energy", "graph", 0, 2), "gap": ("graph_scalar", "graph", 1, 3),
        "dipole": ("graph_vector", "graph", None, None), "charges": ("node_scalar", "node", 0, 1),
        "forces": ("forces", "node", None, None), "order": ("edge_scalar", "edge", 0, None),
        "bond": ("edge_vector", "edge", None, None), "stress": ("stress", "graph", None, None),
    }
    # without compute_forces the node vector is predicted directly, with a head of its own
    direct = targets_from_config(dm.model_copy(update={"y_stress": None}), energy_key="energy")
    assert [t.kind for t in direct if t.name == "forces"] == ["node_vector"]


def test_forces_and_stress_are_predicted_without_labels() -> None:
    dm = DataModuleConfig(y_graph_scalars=["energy"])
    targets = targets_from_config(dm, energy_key="energy", compute_forces=True, compute_stress=True)
    assert [(t.name, t.labelled) for t in targets] == [("energy", True), ("forces", False), ("stress", False)]


def test_heads_follow_the_targets(ethanol, tmp_path: Path) -> None:
    model = EGNNModel(
        datamodule={"y_graph_scalars": ["energy", "gap"], "y_node_scalars": ["charges"], "y_graph_vector": "dipole", "cut_off": 4.0},
        uncertainty="mean_var", trainer={"default_root_dir": str(tmp_path)}, c_hidden=8, num_layers=1,
    )
    for frame in ethanol[:4]:
        frame.info["gap"] = 1.0
    mapping = model.initialise(ethanol[:4]).module.element_mapping
    spec = output_spec(model.config, mapping, 0)
    assert (spec.num_graph_scalars, spec.num_node_scalars, spec.graph_vector_dim, spec.node_vector_dim) == (4, 2, 3, 0)


@pytest.fixture(scope="module")
def bond_labelled() -> pd.DataFrame:
    """Molecules whose bonds carry a label far from zero, with a spread far from one."""
    rng = np.random.default_rng(5)
    n_bonds = [Chem.AddHs(Chem.MolFromSmiles(s)).GetNumBonds() for s in SMILES]
    return pd.DataFrame({"smiles": SMILES, "order": [(7.0 + 3.0 * rng.normal(size=n)).tolist() for n in n_bonds]})


def test_edge_scalars_are_standardised_like_node_and_graph_scalars(bond_labelled: pd.DataFrame, tmp_path: Path) -> None:
    model = EGNNModel(datamodule={"y_edge_scalars": ["order"], "cut_off": 3.0, "bond_features": True},
                      trainer={"default_root_dir": str(tmp_path)}, c_hidden=8, num_layers=1)
    module = model.initialise(bond_labelled).module
    (target,) = [t for t in module.all_targets if isinstance(t, EdgeScalar)]
    stats = module.statistics
    assert float(target.mean) == pytest.approx(stats.edge_scalar_mean["order"]) and 5.0 < float(target.mean) < 9.0
    assert float(target.std) == pytest.approx(stats.edge_scalar_std["order"]) and 2.0 < float(target.std) < 4.0
    # the prediction is mean + std * head, for every edge
    raw_heads: list[torch.Tensor] = []
    handle = module.network.register_forward_hook(lambda _m, _i, out: raw_heads.append(out[OUT_EDGE_SCALARS].detach()))
    try:
        predicted = model.predict(bond_labelled)["order"]
    finally:
        handle.remove()
    head = torch.cat(raw_heads).reshape(-1).numpy()
    np.testing.assert_allclose(np.concatenate(predicted), float(target.mean) + float(target.std) * head, rtol=1e-5)
    # trained on the standardised scale, the loss starts where an untrained head predicts the mean
    assert abs(np.concatenate(predicted).mean() - stats.edge_scalar_mean["order"]) < 3 * stats.edge_scalar_std["order"]


def test_energy_keeps_its_references_in_float64(ethanol, tmp_path: Path) -> None:
    model = PaiNNModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0},
                       compute_forces=True, trainer={"default_root_dir": str(tmp_path)}, num_features=8, num_layers=1)
    module = model.initialise(ethanol[:10]).module
    energy = module.energy_target
    assert isinstance(energy, Energy) and energy.element_energy.dtype == torch.float64
    assert energy.element_energy.abs().max() > 1.0  # xTB references are large
    predicted = model.predict(ethanol[:2])["energy"]
    assert predicted.dtype == np.float64 and np.all(np.abs(predicted) > 100.0)
    assert "energy 'energy'" in repr(module.targets) and "scale=" in repr(module.targets)


def test_calculator_offers_only_what_the_model_computes(ethanol, tmp_path: Path) -> None:
    config = {"datamodule": {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0},
              "compute_forces": True, "trainer": {"default_root_dir": str(tmp_path)}, "num_features": 8, "num_layers": 1}
    calc = PaiNNModel(config).initialise(ethanol[:10]).to_ase_calculator()
    assert "forces" in calc.implemented_properties and "stress" not in calc.implemented_properties
