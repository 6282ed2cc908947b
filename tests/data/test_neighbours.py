"""Neighbour lists equal ASE's exactly: pairs and integer shifts, per structure, every case."""

from __future__ import annotations

import ase
import ase.io
import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from physicsml_like.config import DataModuleConfig
from physicsml_like.data import build_edges, build_graphs, neighbour_list, read_table

from ..conftest import shared_data


def _canonical(i: np.ndarray, j: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    rows = np.concatenate([np.asarray(i)[:, None], np.asarray(j)[:, None], np.asarray(shifts)], axis=1).astype(np.int64)
    return rows[np.lexsort(rows.T[::-1])]


def _assert_same_as_ase(atoms: ase.Atoms, cutoff: float, self_interaction: bool = False) -> None:
    ours = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff, self_interaction)
    ref = ase_neighbor_list("ijS", atoms, cutoff, self_interaction=self_interaction)
    np.testing.assert_array_equal(_canonical(*ours), _canonical(*ref))


def _assert_table_matches_ase(frames: list[ase.Atoms], cutoff: float) -> None:
    """The datamodule's edges (through the whole table path) equal ASE's for every frame."""
    table = read_table(frames, DataModuleConfig(cut_off=cutoff), with_labels=False)
    edges = build_edges(table, cutoff)
    for s, atoms in enumerate(frames):
        e0, e1 = edges.edge_ptr[s], edges.edge_ptr[s + 1]
        ours = _canonical(edges.edge_index[e0:e1, 0], edges.edge_index[e0:e1, 1], edges.shifts[e0:e1])
        ref = _canonical(*ase_neighbor_list("ijS", atoms, cutoff))
        np.testing.assert_array_equal(ours, ref, err_msg=f"frame {s}")


@pytest.mark.parametrize("name", ["ethanol", "small_molecules", "cu_emt", "cu_slab"])
def test_every_bundled_dataset_matches_ase(name: str, request: pytest.FixtureRequest) -> None:
    fixture = {"cu_emt": "cu_frames"}.get(name, name)
    frames = request.getfixturevalue(fixture)
    _assert_table_matches_ase(frames[:150], cutoff=5.0)


def test_shared_strained_copper_matches_ase() -> None:
    """Frames with different triclinic cells in one dataset (physicsml used one global cell)."""
    frames = ase.io.read(shared_data("cu_emt.extxyz"), index=":40")
    cells = np.array([f.cell.array for f in frames])
    assert not np.allclose(cells[0], cells[1:]), "the frames should have different cells"
    _assert_table_matches_ase(frames, cutoff=5.0)


def test_tiny_cell_with_cutoff_beyond_half_the_cell() -> None:
    atoms = bulk("Cu", "fcc", a=3.6)  # one atom, 2.5 Å periodic distance
    for cutoff in (3.0, 6.0, 9.0):
        _assert_same_as_ase(atoms, cutoff)
    i, _, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 6.0)
    assert len(i) > 12 and np.abs(shifts).max() >= 2  # several images of itself


def test_skewed_rattled_cell_and_unwrapped_positions() -> None:
    rng = np.random.default_rng(0)
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 1)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + np.array([[0, 0.3, 0.1], [0, 0, 0.2], [0, 0, 0]])), scale_atoms=True)
    atoms.positions += rng.normal(0, 0.2, atoms.positions.shape) + np.array([7.0, -13.0, 21.0])  # outside the cell
    for cutoff in (2.0, 4.0, 7.5):
        _assert_same_as_ase(atoms, cutoff)


@pytest.mark.parametrize("pbc", [(True, True, False), (True, False, False), (False, True, True), (True, False, True)])
def test_partial_periodicity(pbc: tuple[bool, bool, bool]) -> None:
    atoms = fcc111("Cu", size=(2, 2, 3), vacuum=4.0)
    atoms.pbc = pbc
    atoms.rattle(0.05, seed=1)
    _assert_same_as_ase(atoms, 5.0)
    _i, _, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
    assert np.all(shifts[:, ~np.array(pbc)] == 0), "no image along a non-periodic direction"
    assert np.any(shifts[:, np.array(pbc)] != 0), "periodic images are kept"


def test_slab_with_zero_vector_along_the_open_direction() -> None:
    atoms = fcc111("Cu", size=(2, 2, 3), vacuum=4.0)
    atoms.pbc = (True, True, False)
    atoms.cell[2] = 0.0
    _assert_same_as_ase(atoms, 5.0)


def test_isolated_atom_and_molecule_and_self_interaction() -> None:
    lone = ase.Atoms("H", positions=[[0.0, 0.0, 0.0]])
    _assert_same_as_ase(lone, 5.0)
    _assert_same_as_ase(lone, 5.0, self_interaction=True)
    mol = molecule("CH3CH2OH")
    for cutoff in (1.2, 2.5, 5.0):
        _assert_same_as_ase(mol, cutoff)
        _assert_same_as_ase(mol, cutoff, self_interaction=True)
    periodic_lone = ase.Atoms("H", positions=[[0.0, 0.0, 0.0]], cell=np.eye(3) * 2.0, pbc=True)
    _assert_same_as_ase(periodic_lone, 3.0, self_interaction=True)


def test_frames_with_different_cells_in_one_dataset(cu_frames: list[ase.Atoms]) -> None:
    frames = cu_frames[:30]
    assert len({tuple(np.round(f.cell.array.ravel(), 6)) for f in frames}) == len(frames)
    _assert_table_matches_ase(frames, 4.0)


def test_atom_without_neighbours_warns_once_and_is_kept() -> None:
    far = ase.Atoms("H3", positions=[[0, 0, 0], [0.7, 0, 0], [20, 0, 0]])
    with pytest.warns(UserWarning, match="1 atom\\(s\\) have no neighbour"):
        arrays = build_graphs([far], DataModuleConfig(cut_off=3.0), with_labels=False)
    assert int(arrays["atom_ptr"][-1]) == 3
    assert len(arrays["edge_index"]) == 2  # the H2 pair, both directions


def test_molecules_and_crystals_mixed_in_one_dataset(ethanol, cu_frames, cu_slab) -> None:
    """Molecules are neighbour-listed many per call; crystals one by one; both exact."""
    lone = ase.Atoms("He", positions=[[3.0, 3.0, 3.0]])
    big = molecule("C60")
    frames = [ethanol[0], cu_frames[0], lone, big, cu_slab[0], ethanol[1], lone.copy()] + ethanol[2:40]
    _assert_table_matches_ase(frames, cutoff=3.0)
    edges = build_edges(read_table(frames, DataModuleConfig(), with_labels=False), 3.0)
    assert edges.isolated_atoms == 2 and edges.first_isolated_frame == 2


def test_periodic_edges_come_grouped_by_centre_atom(cu_frames: list[ase.Atoms], cu_slab: list[ase.Atoms]) -> None:
    """Periodic structures (vesin) give the edges of each centre atom together, as molecules
    (matscipy) do."""
    for atoms in (cu_frames[0], cu_slab[0]):
        i, _, _ = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.5)
        assert len(i) > 100 and np.all(np.diff(i) >= 0)


def test_distance_matrices_and_gridded_matscipy_give_the_same_molecule_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small molecules are listed by distance matrices, one size at a time; larger ones by the
    gridded matscipy call. Forcing every molecule down either path gives the same edges and
    lengths, in structure order, with each centre atom's edges together."""
    from physicsml_like.data import neighbours

    rng = np.random.default_rng(7)
    frames = [ase.Atoms(numbers=rng.integers(1, 9, n), positions=rng.uniform(0, 1.2 * n ** (1 / 3) * 2, (n, 3)))
              for n in [9, 1, 12, 9, 40, 3, 12, 33, 2, 9]]
    table = read_table(frames, DataModuleConfig(cut_off=3.0), with_labels=False)

    def edges_with(limit: int) -> neighbours.EdgeArrays:
        monkeypatch.setattr(neighbours, "_DISTANCE_MATRIX_ATOMS", limit)
        monkeypatch.setattr(neighbours, "_DISTANCE_MATRIX_MOLECULES", 1)
        return build_edges(table, 3.0)

    by_matrices, by_matscipy, mixed = edges_with(10_000), edges_with(0), edges_with(32)
    assert len(by_matrices.edge_index) > 300
    for other in (by_matscipy, mixed):
        np.testing.assert_array_equal(other.edge_ptr, by_matrices.edge_ptr)
        for s in range(len(frames)):
            e0, e1 = by_matrices.edge_ptr[s], by_matrices.edge_ptr[s + 1]
            a = by_matrices.edge_index[e0:e1]
            b = other.edge_index[e0:e1]
            np.testing.assert_array_equal(_canonical(a[:, 0], a[:, 1], np.zeros((e1 - e0, 3))),
                                          _canonical(b[:, 0], b[:, 1], np.zeros((e1 - e0, 3))), err_msg=f"frame {s}")
            assert np.all(np.diff(b[:, 0]) >= 0), f"frame {s}: edges of a centre atom are not together"
        np.testing.assert_allclose(np.sort(other.lengths), np.sort(by_matrices.lengths), rtol=0, atol=1e-12)
    _assert_table_matches_ase(frames, 3.0)
