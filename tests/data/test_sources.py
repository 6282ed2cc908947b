"""Every source reaches the same internal table, with labels from where users keep them."""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import numpy as np
import pandas as pd
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from rdkit import Chem

from physicsml_like.config import DataModuleConfig
from physicsml_like.data import read_table
from physicsml_like.datasets import dataset_path, load_table
from physicsml_like.errors import DataError

from ..conftest import shared_data

LABELS = DataModuleConfig(
    y_graph_scalars=["energy"], y_node_vector="forces", y_node_scalars=["charges"], y_graph_vector="dipole"
)


def _frame_table(frames: list[ase.Atoms]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "atomic_numbers": [f.numbers.tolist() for f in frames],
            "coordinates": [f.positions.tolist() for f in frames],
            "energy": [f.get_potential_energy() for f in frames],
            "forces": [f.get_forces().tolist() for f in frames],
            "charges": [f.calc.results["charges"].tolist() for f in frames],
            "dipole": [f.calc.results["dipole"].tolist() for f in frames],
        }
    )


def _assert_tables_equal(a, b) -> None:
    np.testing.assert_array_equal(a.atomic_numbers, b.atomic_numbers)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-12)
    np.testing.assert_array_equal(a.atom_ptr, b.atom_ptr)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    np.testing.assert_allclose(a.cell, b.cell)
    assert a.graph_labels.keys() == b.graph_labels.keys()
    for key in a.graph_labels:
        np.testing.assert_allclose(a.graph_labels[key], b.graph_labels[key], atol=1e-12)
    for key in a.node_labels:
        np.testing.assert_allclose(a.node_labels[key], b.node_labels[key], atol=1e-12)


def test_path_list_dataframe_and_dict_give_the_same_table(ethanol: list[ase.Atoms]) -> None:
    frames = ethanol[:20]
    from_list = read_table(frames, LABELS)
    frame = _frame_table(frames)
    _assert_tables_equal(from_list, read_table(frame, LABELS))
    _assert_tables_equal(from_list, read_table(frame.to_dict(orient="list"), LABELS))
    from_path = read_table(dataset_path("ethanol"), LABELS)
    _assert_tables_equal(from_list, _head(from_path, 20))
    assert from_list.num_structures == 20 and from_list.num_atoms == 180
    assert from_list.node_labels["forces"].shape == (180, 3)
    assert from_list.graph_labels["dipole"].shape == (20, 3)


def _head(table, n):
    from physicsml_like.data.table import StructureTable

    a = int(table.atom_ptr[n])
    return StructureTable(
        atomic_numbers=table.atomic_numbers[:a], positions=table.positions[:a], atom_ptr=table.atom_ptr[: n + 1],
        cell=table.cell[:n], pbc=table.pbc[:n],
        graph_labels={k: v[:n] for k, v in table.graph_labels.items()},
        node_labels={k: v[:a] for k, v in table.node_labels.items()}, row_ids=table.row_ids[:n],
    )


def test_labels_from_calculator_info_and_arrays() -> None:
    atoms = ase.Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=-5.0, forces=np.ones((3, 3)))
    atoms.info["homo"] = -7.5
    atoms.arrays["charges_custom"] = np.array([-0.8, 0.4, 0.4])
    config = DataModuleConfig(y_graph_scalars=["energy", "homo"], y_node_vector="forces", y_node_scalars=["charges_custom"])
    table = read_table([atoms], config)
    assert table.graph_labels["energy"][0] == -5.0
    assert table.graph_labels["homo"][0] == -7.5
    np.testing.assert_array_equal(table.node_labels["charges_custom"], [-0.8, 0.4, 0.4])


def test_stress_in_voigt_form_becomes_3x3(cu_frames: list[ase.Atoms]) -> None:
    table = read_table(cu_frames[:3], DataModuleConfig(y_stress="stress"))
    stress = table.graph_labels["stress"]
    assert stress.shape == (3, 3, 3)
    np.testing.assert_allclose(stress, np.transpose(stress, (0, 2, 1)))
    np.testing.assert_allclose(stress[0], cu_frames[0].get_stress(voigt=False))


def test_each_frame_keeps_its_own_cell_and_pbc(cu_frames: list[ase.Atoms], cu_slab: list[ase.Atoms]) -> None:
    table = read_table(cu_frames[:5] + cu_slab[:5], DataModuleConfig())
    for s, atoms in enumerate(cu_frames[:5] + cu_slab[:5]):
        np.testing.assert_allclose(table.cell[s], atoms.cell.array)
        np.testing.assert_array_equal(table.pbc[s], atoms.pbc)


def test_config_cell_and_pbc_fill_structures_without_one() -> None:
    frame = pd.DataFrame({"atomic_numbers": [[29, 29]], "coordinates": [[[0, 0, 0], [1.8, 1.8, 0]]]})
    table = read_table(frame, DataModuleConfig(cell=[[3.6, 0, 0], [0, 3.6, 0], [0, 0, 3.6]], pbc=(True, True, False)))
    np.testing.assert_allclose(table.cell[0], np.eye(3) * 3.6)
    np.testing.assert_array_equal(table.pbc[0], [True, True, False])
    plain = read_table(frame, DataModuleConfig())
    assert not plain.pbc.any() and not plain.cell.any()


def test_smiles_give_reproducible_conformers_with_hydrogens() -> None:
    config = DataModuleConfig(atom_features=["formal_charge", "aromatic", "in_ring", "degree", "hybridisation"], bond_features=True)
    a = read_table(["CCO", "c1ccccc1"], config, with_labels=False)
    b = read_table(["CCO", "c1ccccc1"], config, with_labels=False)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.atoms_per_structure.tolist() == [9, 12]  # hydrogens added
    assert a.atom_features is not None and a.atom_features.shape == (21, 1 + 1 + 1 + 6 + 7)
    assert a.atom_features[9:15, 1].tolist() == [1.0] * 6  # benzene carbons are aromatic
    assert a.bond_index is not None and a.bond_ptr.tolist() == [0, 8, 20]
    # the conformer is a sensible geometry: C-C bond of ethanol near 1.51 Å
    assert 1.45 < np.linalg.norm(a.positions[0] - a.positions[1]) < 1.56


def test_rdkit_molecules_and_smiles_table_with_labels() -> None:
    frame = load_table("small_molecules")
    table = read_table(frame.head(10), DataModuleConfig(y_graph_scalars=["energy", "dipole_norm"]))
    assert table.num_structures == 10
    np.testing.assert_allclose(table.graph_labels["energy"], frame["energy"].head(10))
    np.testing.assert_array_equal(table.atoms_per_structure, frame["n_atoms"].head(10))
    mols = [Chem.AddHs(Chem.MolFromSmiles(s)) for s in ("CO", "N")]
    mols[0].SetDoubleProp("energy", -1.5)
    mols[1].SetDoubleProp("energy", -2.5)
    from_mols = read_table(mols, DataModuleConfig(y_graph_scalars=["energy"]))
    assert from_mols.graph_labels["energy"].tolist() == [-1.5, -2.5]


def test_a_table_file_is_read_with_pandas(tmp_path: Path) -> None:
    path = tmp_path / "mols.csv"
    load_table("small_molecules").head(5).to_csv(path, index=False)
    table = read_table(path, DataModuleConfig(y_graph_scalars=["energy"]))
    assert table.num_structures == 5


def test_shared_reference_csv_and_extxyz() -> None:
    frame = pd.read_csv(shared_data("small_molecules_xtb.csv")).head(8)
    table = read_table(frame, DataModuleConfig(y_graph_scalars=["energy"]))
    np.testing.assert_array_equal(table.atoms_per_structure, frame["n_atoms"])
    xyz = read_table(shared_data("small_molecules_xtb.extxyz"), DataModuleConfig(y_graph_scalars=["energy"], y_node_vector="forces"))
    assert xyz.num_structures == 100


def test_no_python_object_per_atom(cu_frames: list[ase.Atoms]) -> None:
    table = read_table(cu_frames, DataModuleConfig(y_graph_scalars=["energy"], y_node_vector="forces"))
    for array in (table.atomic_numbers, table.positions, table.node_labels["forces"]):
        assert isinstance(array, np.ndarray) and array.dtype != object
    assert table.positions.shape == (table.num_atoms, 3)


def test_bulk_read_of_plain_atoms_equals_the_checked_reader(ethanol: list[ase.Atoms]) -> None:
    """Plain ase.Atoms are read in bulk; the table is exactly the frame-by-frame reader's, and
    one odd frame (integer numbers as floats, an energy given as a one-element list) sends its
    chunk to the checked reader, which accepts it as before."""
    from physicsml_like.data import sources

    config = DataModuleConfig(y_graph_scalars=["energy", "homo"], y_node_vector="forces", y_node_scalars=["charges"])
    frames = [f.copy() for f in ethanol[:30]]
    for k, frame in enumerate(frames):
        frame.calc = SinglePointCalculator(frame, energy=ethanol[k].get_potential_energy(), forces=ethanol[k].get_forces())
        frame.info["homo"] = -7.0 + 0.01 * k
        frame.arrays["charges"] = np.linspace(-0.5, 0.5, len(frame))
    request = sources.LabelRequest.from_config(config)
    items = list(enumerate(frames))
    bulk = sources._plain_atoms_table(items, request, "frames")
    assert bulk is not None
    checked = next(sources._checked_atoms_tables(iter(items), config, request, len(items), "frames"))
    _assert_tables_equal(bulk, checked)
    np.testing.assert_array_equal(bulk.row_ids, checked.row_ids)
    assert np.abs(bulk.node_labels["forces"]).max() > 0.1  # the compared labels are real

    odd = [f.copy() for f in frames]
    for k, frame in enumerate(odd):
        frame.calc = SinglePointCalculator(frame, energy=frames[k].get_potential_energy(), forces=frames[k].get_forces())
    odd[7].info["homo"] = [-7.0]
    assert sources._plain_atoms_table(list(enumerate(odd)), request, "frames") is None
    expected = [-7.0 if k == 7 else f.info["homo"] for k, f in enumerate(odd)]
    np.testing.assert_allclose(read_table(odd, config).graph_labels["homo"], expected)


def test_a_missing_label_in_a_plain_chunk_is_named_with_its_frame(ethanol: list[ase.Atoms]) -> None:
    frames = [f.copy() for f in ethanol[:12]]
    for k, frame in enumerate(frames):
        frame.calc = SinglePointCalculator(frame, energy=ethanol[k].get_potential_energy(), forces=ethanol[k].get_forces())
    del frames[5].calc.results["forces"]
    with pytest.raises(DataError, match="forces") as error:
        read_table(frames, DataModuleConfig(y_graph_scalars=["energy"], y_node_vector="forces"))
    assert error.value.index == 5
