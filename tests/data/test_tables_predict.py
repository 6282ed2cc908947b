"""Predictions on tables: aligned with the input, written by the CLI, and SMILES tables with
coordinates for a model with edge targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from physicsml_like.cli import main
from physicsml_like.data import write_structures
from physicsml_like.data.tables_io import decode_cell, read_frame
from physicsml_like.models import EGNNModel

LABELS = {"y_graph_scalars": ["energy"], "y_node_vector": "forces"}


@pytest.fixture(scope="module")
def trained(ethanol, tmp_path_factory: pytest.TempPathFactory) -> EGNNModel:
    root = tmp_path_factory.mktemp("runs")
    model = EGNNModel(datamodule={**LABELS, "cut_off": 4.0}, compute_forces=True, c_hidden=8, num_layers=1,
                      trainer={"max_epochs": 1, "default_root_dir": str(root), "enable_progress_bar": False})
    return model.train(ethanol[:8])


def test_dataframe_predictions_join_on_a_non_default_index(trained: EGNNModel, ethanol, tmp_path: Path) -> None:
    path = write_structures(ethanol[:5], tmp_path / "in.csv", LABELS)
    frame = read_frame(path)
    frame.index = pd.Index([f"mol-{k}" for k in (7, 3, 9, 1, 5)], name="key")
    frame["id"] = range(100, 105)
    pred = trained.predict(frame, as_dataframe=True, keep_columns=["id"])
    assert list(pred.index) == list(frame.index) and pred["id"].tolist() == list(range(100, 105))
    joined = frame[["energy"]].join(pred[["energy"]].add_suffix("_pred"))
    assert joined["energy_pred"].notna().all()
    np.testing.assert_allclose(joined["energy_pred"], trained.predict(ethanol[:5])["energy"], rtol=1e-6)


def test_cli_predict_writes_parquet_and_csv_that_read_back(trained: EGNNModel, ethanol, tmp_path: Path) -> None:
    saved = trained.save(tmp_path / "model")
    data = write_structures(ethanol[:4], tmp_path / "in.parquet", LABELS)
    expected = trained.predict(ethanol[:4])
    for suffix in (".parquet", ".csv"):
        out = tmp_path / f"pred{suffix}"
        assert main(["predict", str(saved), str(data), "-o", str(out)]) == 0
        back = read_frame(out)
        np.testing.assert_allclose(back["energy"], expected["energy"], rtol=1e-6)
        for row, forces in enumerate(expected["forces"]):
            np.testing.assert_allclose(decode_cell(back["forces"].iat[row]), forces, rtol=1e-6)


def _smiles_with_coordinates() -> pd.DataFrame:
    rows = []
    for smiles in ["CCO", "CC", "C=O", "CO", "CCC"]:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=1)
        rows.append({
            "smiles": smiles,
            "atomic_numbers": [a.GetAtomicNum() for a in mol.GetAtoms()],
            "coordinates": mol.GetConformer().GetPositions().tolist(),
            "order": [float(b.GetBondTypeAsDouble()) for b in mol.GetBonds()],
        })
    return pd.DataFrame(rows)


def test_edge_targets_predict_on_a_smiles_table_with_coordinates(tmp_path: Path) -> None:
    """Training read the bonds because the edge labels were requested; predict reads no labels
    and must still read the bonds, since the model predicts on them."""
    table = _smiles_with_coordinates()
    model = EGNNModel(datamodule={"y_edge_scalars": ["order"], "cut_off": 3.0}, c_hidden=8, num_layers=1,
                      trainer={"max_epochs": 1, "default_root_dir": str(tmp_path), "enable_progress_bar": False})
    model.train(table)
    predicted = model.predict(table.drop(columns="order"))["order"]
    assert len(predicted) == len(table)
    n_bonds = table["order"].map(len)
    # every bond is an edge in both directions, plus the non-bonded neighbours within the cutoff
    assert all(len(p) >= 2 * n for p, n in zip(predicted, n_bonds, strict=True))
    assert all(np.isfinite(p).all() for p in predicted)
