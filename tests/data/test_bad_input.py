"""Bad input gets an error naming the problem and where it is (source, frame/row, field)."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pandas as pd
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from physicsml_like.config import ConfigError, DataModuleConfig
from physicsml_like.data import GraphDataModule, read_table
from physicsml_like.errors import DataError

ENERGY_FORCES = DataModuleConfig(y_graph_scalars=["energy"], y_node_vector="forces")


def _water(energy: float = -1.0, forces: np.ndarray | None = None) -> ase.Atoms:
    atoms = ase.Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((3, 3)) if forces is None else forces)
    return atoms


def test_missing_label_names_the_label_frame_and_what_is_there() -> None:
    frames = [_water(), _water()]
    with pytest.raises(DataError) as err:
        read_table(frames, DataModuleConfig(y_graph_scalars=["homo"]))
    assert err.value.field == "homo" and err.value.index == 0
    assert "'homo' is missing" in str(err.value) and "energy" in str(err.value)


def test_missing_dataframe_column_is_named() -> None:
    frame = pd.DataFrame({"atomic_numbers": [[1, 1]], "coordinates": [[[0, 0, 0], [0.7, 0, 0]]]})
    with pytest.raises(DataError, match="column 'energy' not found") as err:
        read_table(frame, ENERGY_FORCES)
    assert err.value.field == "energy" and err.value.source == "DataFrame"


def test_nan_and_inf_in_positions_and_labels_name_the_frame() -> None:
    bad_pos = _water()
    bad_pos.positions[1, 2] = np.nan
    with pytest.raises(DataError, match="NaN or inf in positions") as err:
        read_table([_water(), _water(), bad_pos], ENERGY_FORCES)
    assert err.value.index == 2 and "atom 1" in str(err.value)
    with pytest.raises(DataError, match="NaN or inf in energy") as err:
        read_table([_water(), _water(energy=np.inf)], ENERGY_FORCES)
    assert err.value.index == 1 and err.value.field == "energy"
    forces = np.zeros((3, 3))
    forces[2, 0] = np.nan
    with pytest.raises(DataError, match="NaN or inf in forces") as err:
        read_table([_water(forces=forces)], ENERGY_FORCES)
    assert err.value.index == 0


def test_forces_with_the_wrong_shape() -> None:
    with pytest.raises(DataError, match=r"'forces' has shape \(2, 3\) but the structure has 3 atoms") as err:
        read_table([_water(), _water(forces=np.zeros((2, 3)))], ENERGY_FORCES)
    assert err.value.index == 1 and err.value.field == "forces"
    frame = pd.DataFrame(
        {"atomic_numbers": [[1, 1]], "coordinates": [[[0, 0, 0], [0.7, 0, 0]]], "energy": [0.0], "forces": [[[0, 0, 0]]]}
    )
    with pytest.raises(DataError, match="'forces' has shape"):
        read_table(frame, ENERGY_FORCES)


def test_coordinates_that_do_not_match_the_atoms() -> None:
    frame = pd.DataFrame({"atomic_numbers": [[1, 1], [1, 1, 8]], "coordinates": [[[0, 0, 0], [0.7, 0, 0]], [[0, 0, 0]]]})
    with pytest.raises(DataError, match="coordinates have shape") as err:
        read_table(frame, DataModuleConfig())
    assert err.value.index == 1


def test_element_outside_the_mapping(ethanol: list[ase.Atoms]) -> None:
    odd = ase.Atoms("CH3Cl", positions=np.random.default_rng(0).normal(size=(5, 3)) * 1.5)
    odd.calc = SinglePointCalculator(odd, energy=0.0, forces=np.zeros((5, 3)))
    dm = GraphDataModule(ENERGY_FORCES, train_data=ethanol[:10], validation_data=[_water(), odd])
    with pytest.raises(DataError, match=r"element Cl \(Z=17\) is not in the element mapping") as err:
        dm.setup("fit")
    assert err.value.index == 1
    dm = GraphDataModule({"elements": ["H", "C"]}, predict_data=[_water()])
    with pytest.raises(DataError, match=r"element O \(Z=8\)"):
        dm.setup("predict")


def test_empty_dataset() -> None:
    with pytest.raises(DataError, match="empty"):
        read_table([], DataModuleConfig())
    with pytest.raises(DataError, match="empty"):
        read_table(pd.DataFrame({"atomic_numbers": [], "coordinates": []}), DataModuleConfig())


def test_structure_without_atoms() -> None:
    with pytest.raises(DataError, match="no atoms") as err:
        read_table([_water(), ase.Atoms()], DataModuleConfig(), with_labels=False)
    assert err.value.index == 1


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.extxyz"
    path.write_text("")
    with pytest.raises(DataError, match="empty") as err:
        read_table(path, DataModuleConfig())
    assert str(path) in str(err.value)


def test_periodic_structure_with_zero_volume_cell() -> None:
    atoms = ase.Atoms("Cu2", positions=[[0, 0, 0], [1.8, 1.8, 0]], cell=[[3.6, 0, 0], [0, 3.6, 0], [0, 0, 0]], pbc=True)
    with pytest.raises(DataError, match="zero volume") as err:
        read_table([_water(), atoms], DataModuleConfig())
    assert err.value.index == 1 and err.value.field == "cell"
    flat = atoms.copy()
    flat.cell = [[3.6, 0, 0], [7.2, 0, 0], [0, 0, 3.6]]
    with pytest.raises(DataError, match="zero volume"):
        read_table([flat], DataModuleConfig())
    slab = atoms.copy()
    slab.pbc = (True, True, False)  # the zero vector is along the open direction: fine
    assert read_table([slab], DataModuleConfig()).num_structures == 1


def test_unparsable_smiles_names_the_row() -> None:
    with pytest.raises(DataError, match="unparsable SMILES 'C1CC'") as err:
        read_table(["CCO", "C1CC"], DataModuleConfig(), with_labels=False)
    assert err.value.index == 1
    frame = pd.DataFrame({"smiles": ["CC", "not a molecule"], "energy": [1.0, 2.0]})
    with pytest.raises(DataError, match="unparsable SMILES") as err:
        read_table(frame, DataModuleConfig(y_graph_scalars=["energy"]))
    assert err.value.index == 1


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="no_such_file.extxyz"):
        read_table("no_such_file.extxyz", DataModuleConfig())
    with pytest.raises(FileNotFoundError, match="missing.xyz"):
        GraphDataModule(ENERGY_FORCES, train_data="missing.xyz").setup("fit")


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.extxyz"
    path.write_text("3\nProperties=species:S:1:pos:R:3\nH 0 0\n")
    with pytest.raises(DataError) as err:
        read_table(path, DataModuleConfig())
    assert str(path) in str(err.value)


def test_features_need_molecules(ethanol: list[ase.Atoms]) -> None:
    with pytest.raises(DataError, match="need molecule inputs"):
        read_table(ethanol[:2], DataModuleConfig(atom_features=["aromatic"]))


def test_config_errors_name_the_field_and_value() -> None:
    with pytest.raises(ConfigError, match=r"cut_of: unknown field.*did you mean 'cut_off'"):
        DataModuleConfig(cut_of=5.0)
    with pytest.raises(ConfigError, match=r"cut_off: .*greater than 0.*-1"):
        DataModuleConfig(cut_off=-1)
    with pytest.raises(ConfigError, match=r"train.batch_size"):
        DataModuleConfig(train={"batch_size": 0})
    with pytest.raises(ConfigError, match=r"train.batchsize: unknown field.*did you mean 'batch_size'"):
        DataModuleConfig(train={"batchsize": 8})
    with pytest.raises(ConfigError, match="pre_batch"):
        DataModuleConfig(pre_batch="in_ram")
    with pytest.raises(ConfigError, match="label 'energy' is used by both"):
        DataModuleConfig(y_graph_scalars=["energy"], y_node_scalars=["energy"])
    with pytest.raises(ConfigError, match="cell"):
        DataModuleConfig(cell=[[1, 0, 0], [0, 1, 0]])
    assert isinstance(ConfigError("x"), ValueError)
