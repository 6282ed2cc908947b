"""Tables of structures in CSV and Parquet files, both directions, and predictions as tables."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from physicsml_like.config.datamodule import DataModuleConfig
from physicsml_like.data import read_table, write_structures
from physicsml_like.data.tables_io import (
    MissingDependencyError,
    decode_cell,
    predictions_frame,
    write_frame,
)
from physicsml_like.errors import DataError

MOLECULE = {"y_graph_scalars": ["energy"], "y_node_vector": "forces"}
CRYSTAL = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress"}


def _same_tables(a, b) -> None:
    np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
    np.testing.assert_array_equal(a.atom_ptr, b.atom_ptr)
    np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.cell, b.cell, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    assert set(a.graph_labels) == set(b.graph_labels) and set(a.node_labels) == set(b.node_labels)
    for name in a.graph_labels:
        np.testing.assert_allclose(a.graph_labels[name], b.graph_labels[name], rtol=1e-12)
    for name in a.node_labels:
        np.testing.assert_allclose(a.node_labels[name], b.node_labels[name], rtol=1e-12)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_molecules_with_forces_round_trip(ethanol, tmp_path: Path, suffix: str) -> None:
    config = DataModuleConfig(**MOLECULE)
    original = read_table(ethanol[:6], config)
    path = write_structures(ethanol[:6], tmp_path / f"ethanol{suffix}", MOLECULE)
    back = read_table(path, config)
    _same_tables(original, back)
    assert not back.pbc.any() and back.node_labels["forces"].std() > 0.1  # real forces came back


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_periodic_structures_with_cell_pbc_stress_round_trip(cu_frames, tmp_path: Path, suffix: str) -> None:
    config = DataModuleConfig(**CRYSTAL)
    original = read_table(cu_frames[:4], config)
    assert original.pbc.all() and np.abs(original.graph_labels["stress"]).max() > 0
    back = read_table(write_structures(cu_frames[:4], tmp_path / f"cu{suffix}", CRYSTAL), config)
    _same_tables(original, back)


def test_csv_written_by_pandas_with_python_lists_reads(tmp_path: Path) -> None:
    """A user's own CSV: lists written by pandas as Python reprs (True/False in pbc)."""
    frame = pd.DataFrame({
        "atomic_numbers": [[29, 29]],
        "coordinates": [[[0.0, 0.0, 0.0], [1.8, 1.8, 0.0]]],
        "cell": [[[3.6, 0, 0], [0, 3.6, 0], [0, 0, 3.6]]],
        "pbc": [(True, True, False)],
        "energy": [-1.5],
    })
    frame.to_csv(tmp_path / "own.csv", index=False)
    table = read_table(tmp_path / "own.csv", DataModuleConfig(y_graph_scalars=["energy"]))
    assert table.pbc.tolist() == [[True, True, False]]
    np.testing.assert_allclose(table.positions[1], [1.8, 1.8, 0.0])
    assert table.graph_labels["energy"].tolist() == [-1.5]


def test_a_cell_that_is_not_a_list_names_row_and_column(tmp_path: Path) -> None:
    pd.DataFrame({"atomic_numbers": ["[1, 1]", "[1, 1]"], "coordinates": ["[[0,0,0],[0,0,0.7]]", "[[0,0,0] [0,0,0.7]]"]}).to_csv(
        tmp_path / "bad.csv", index=False
    )
    with pytest.raises(DataError, match=r"frame/row 1, field 'coordinates'.*not a JSON list"):
        read_table(tmp_path / "bad.csv", DataModuleConfig())


def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(MissingDependencyError, match=r"physicsml_like\[parquet\]"):
        write_frame(pd.DataFrame({"a": [1]}), tmp_path / "x.parquet")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_decode_cell_passes_plain_values_through() -> None:
    assert decode_cell("CCO") == "CCO" and decode_cell(1.5) == 1.5 and decode_cell(float("nan")) is None
    nested = np.array([np.array([1.0, 2.0]), np.array([3.0, 4.0])], dtype=object)  # as Parquet gives
    assert decode_cell(nested).shape == (2, 2)


def test_predictions_keep_the_input_index_and_id_columns() -> None:
    data = pd.DataFrame({"id": ["a", "b", "c"], "smiles": ["C", "CC", "CCC"]}, index=[10, 20, 30])
    result = {"energy": np.array([1.0, 2.0, 3.0]), "forces": [np.zeros((5, 3)), np.zeros((8, 3)), np.zeros((11, 3))]}
    pred = predictions_frame(result, data, ["id"])
    assert list(pred.index) == [10, 20, 30] and list(pred.columns) == ["id", "energy", "forces"]
    joined = data.join(pred.drop(columns="id"))
    assert joined["energy"].tolist() == [1.0, 2.0, 3.0]  # no NaN: aligned on the index
    with pytest.raises(ValueError, match="'name' is not in the data"):
        predictions_frame(result, data, ["name"])
    with pytest.raises(ValueError, match="needs a DataFrame or a table file"):
        predictions_frame(result, ["C", "CC", "CCC"], ["id"])
