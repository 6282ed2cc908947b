"""Training statistics: edge scalars are scaled like node and graph scalars, over the labelled
edges only, and statistics saved before they existed still load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from physicsml_like import keys as K
from physicsml_like.data import DatasetStatistics, GraphDataModule, compute_statistics
from physicsml_like.data import statistics as statistics_module

SAVED = Path(__file__).resolve().parents[1] / "compat" / "saved"
SMILES = ["CCO", "C=O", "CC(=O)O", "c1ccccc1", "CCN"]
EDGE_CONFIG = {"y_edge_scalars": ["bond_a", "bond_b"], "cut_off": 4.0, "shuffle": False}


@pytest.fixture(scope="module")
def bond_labelled() -> pd.DataFrame:
    """Molecules with two per-bond labels far from zero (bonds counted with hydrogens)."""
    rng = np.random.default_rng(3)
    n_bonds = [Chem.AddHs(Chem.MolFromSmiles(s)).GetNumBonds() for s in SMILES]
    return pd.DataFrame({
        "smiles": SMILES,
        "bond_a": [rng.uniform(1.0, 3.0, n).tolist() for n in n_bonds],
        "bond_b": [(-5.0 + rng.normal(size=n)).tolist() for n in n_bonds],
    })


def _direct(frame: pd.DataFrame, column: str) -> tuple[float, float]:
    """Mean and spread over the bonds (each bond labels both directions, so the same numbers)."""
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in frame[column]])
    return float(values.mean()), float(values.std())


@pytest.fixture(scope="module")
def edge_module(bond_labelled: pd.DataFrame) -> GraphDataModule:
    dm = GraphDataModule(EDGE_CONFIG, train_data=bond_labelled, progress=False)
    dm.setup("fit")
    return dm


def test_edge_scalar_statistics_match_a_direct_computation(
    bond_labelled: pd.DataFrame, edge_module: GraphDataModule
) -> None:
    stats = edge_module.statistics
    assert list(stats.edge_scalar_mean) == ["bond_a", "bond_b"]
    for name in ("bond_a", "bond_b"):
        mean, std = _direct(bond_labelled, name)
        np.testing.assert_allclose(stats.edge_scalar_mean[name], mean, rtol=1e-12)
        np.testing.assert_allclose(stats.edge_scalar_std[name], std, rtol=1e-9)
        assert std > 0.1


def test_unlabelled_edges_do_not_count(bond_labelled: pd.DataFrame, edge_module: GraphDataModule) -> None:
    arrays = edge_module.split_arrays("train")
    mask = np.asarray(arrays[K.EDGE_LABEL_MASK])
    n_bonds = sum(len(v) for v in bond_labelled["bond_a"])
    assert int(mask.sum()) == 2 * n_bonds
    assert (~mask).sum() > n_bonds  # the neighbour list has many more (unlabelled) edges
    # with every edge counted the placeholder zeros would pull the statistics far off
    everything = {**arrays, K.EDGE_LABEL_MASK: np.ones_like(mask)}
    wrong = compute_statistics(everything, edge_scalar_names=["bond_a", "bond_b"])
    right = edge_module.statistics
    for name in ("bond_a", "bond_b"):
        assert abs(wrong.edge_scalar_mean[name] - right.edge_scalar_mean[name]) > 0.3 * abs(right.edge_scalar_mean[name])
        assert abs(wrong.edge_scalar_std[name] - right.edge_scalar_std[name]) > 0.3 * right.edge_scalar_std[name]


def test_chunked_and_on_disk_statistics_agree(
    bond_labelled: pd.DataFrame, edge_module: GraphDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = edge_module.statistics
    monkeypatch.setattr(statistics_module, "_CHUNK", 7)  # chunk boundaries inside molecules
    chunked = compute_statistics(edge_module.split_arrays("train"), edge_scalar_names=["bond_a", "bond_b"])
    on_disk = GraphDataModule({**EDGE_CONFIG, "pre_batch": "on_disk"}, train_data=bond_labelled, progress=False)
    on_disk.setup("fit")
    for stats in (chunked, on_disk.statistics):
        for name in ("bond_a", "bond_b"):
            np.testing.assert_allclose(stats.edge_scalar_mean[name], reference.edge_scalar_mean[name], rtol=1e-12)
            np.testing.assert_allclose(stats.edge_scalar_std[name], reference.edge_scalar_std[name], rtol=1e-9)


def test_edge_scalar_statistics_survive_json(edge_module: GraphDataModule) -> None:
    stats = edge_module.statistics
    again = DatasetStatistics.from_json(stats.to_json())
    assert again == stats
    assert again.edge_scalar_mean == stats.edge_scalar_mean and again.edge_scalar_std == stats.edge_scalar_std
    assert set(stats.to_dict()) >= {"edge_scalar_mean", "edge_scalar_std"}


def test_no_edge_scalars_no_edge_statistics(ethanol) -> None:
    dm = GraphDataModule({"y_graph_scalars": ["energy"], "y_node_scalars": ["charges"]}, train_data=ethanol[:20], progress=False)
    dm.setup("fit")
    assert dm.statistics.edge_scalar_mean == {} and dm.statistics.edge_scalar_std == {}
    assert set(dm.statistics.node_scalar_mean) == {"charges"}


@pytest.mark.parametrize("saved", sorted(p.name for p in SAVED.iterdir() if (p / "statistics.json").exists()))
def test_statistics_saved_before_edge_scalars_still_load(saved: str) -> None:
    text = (SAVED / saved / "statistics.json").read_text()
    raw = json.loads(text)
    assert "edge_scalar_mean" not in raw  # written before edge scalars had statistics
    stats = DatasetStatistics.from_json(text)
    assert stats.edge_scalar_mean == {} and stats.edge_scalar_std == {}
    assert stats.num_structures == raw["num_structures"]
    assert stats.node_scalar_mean == raw["node_scalar_mean"]
    assert stats.element_reference == {int(z): e for z, e in raw["element_reference"].items()}
