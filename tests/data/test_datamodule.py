"""Datamodule behaviour users rely on: identical batches in every mode, true reshuffling,
DDP sharding, on-disk caches that are reused, atomic and self-healing, and correct statistics."""

from __future__ import annotations

import os
from pathlib import Path

import ase
import numpy as np
import pytest
import torch

from physicsml_like import keys as K
from physicsml_like.data import EpochBatchSampler, GraphDataModule, build_graphs
from physicsml_like.data.cache import CacheWriter, MappedArrays
from physicsml_like.datasets import dataset_path

CU = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress", "cut_off": 4.5, "seed": 7}
ETHANOL = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_node_scalars": ["charges"], "y_graph_vector": "dipole"}


def _epoch_batches(dm: GraphDataModule, epoch: int, split: str = "train") -> list:
    loader = {"train": dm.train_dataloader, "validation": dm.val_dataloader}[split]()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def _assert_batches_equal(a, b) -> None:
    keys_a = {k for k in a.keys() if isinstance(a[k], torch.Tensor)}  # noqa: SIM118 (a Batch iterates items)
    keys_b = {k for k in b.keys() if isinstance(b[k], torch.Tensor)}  # noqa: SIM118
    assert keys_a == keys_b
    for key in keys_a:
        assert a[key].dtype == b[key].dtype, key
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert a.num_graphs == b.num_graphs


@pytest.mark.parametrize("config, fixture", [(CU, "cu_frames"), (ETHANOL, "ethanol")])
def test_all_three_modes_give_the_same_batches(config, fixture, request: pytest.FixtureRequest) -> None:
    frames = request.getfixturevalue(fixture)[:70]
    batches = {}
    for mode in (None, "in_memory", "on_disk"):
        dm = GraphDataModule({**config, "pre_batch": mode, "train": {"batch_size": 16}}, train_data=frames)
        dm.prepare_data()
        dm.setup("fit")
        batches[mode] = [_epoch_batches(dm, epoch) for epoch in (0, 1)]
    for mode in ("in_memory", "on_disk"):
        for epoch in (0, 1):
            assert len(batches[mode][epoch]) == len(batches[None][epoch]) == 5
            for a, b in zip(batches[None][epoch], batches[mode][epoch], strict=True):
                _assert_batches_equal(a, b)


def test_batch_content_matches_the_source(cu_frames: list[ase.Atoms]) -> None:
    frames = cu_frames[:10]
    dm = GraphDataModule({**CU, "shuffle": False, "train": {"batch_size": 10}}, train_data=frames)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.num_graphs == 10 and batch.num_nodes == sum(len(f) for f in frames)
    first = frames[0]
    n = len(first)
    torch.testing.assert_close(batch[K.POSITIONS][:n], torch.from_numpy(first.positions))
    torch.testing.assert_close(batch[K.Y_NODE_VECTOR][:n], torch.from_numpy(first.get_forces()))
    torch.testing.assert_close(batch[K.Y_GRAPH_SCALARS][:, 0], torch.tensor([f.get_potential_energy() for f in frames], dtype=torch.float64))
    torch.testing.assert_close(batch[K.CELL][3], torch.from_numpy(frames[3].cell.array))
    torch.testing.assert_close(batch[K.Y_STRESS][2], torch.from_numpy(frames[2].get_stress(voigt=False)))
    # edge vectors from the batch reproduce the neighbour distances
    i, j = batch[K.EDGE_INDEX]
    cell_of_edge = batch[K.CELL][batch[K.BATCH][i]]
    vectors = batch[K.POSITIONS][j] - batch[K.POSITIONS][i] + torch.einsum("ek,ekl->el", batch[K.CELL_SHIFT], cell_of_edge)
    lengths = vectors.norm(dim=1)
    assert float(lengths.max()) < 4.5 and float(lengths.min()) > 1.5
    assert (batch[K.NODE_ATTRS] == 1.0).all()  # one element: one-hot of width 1


def test_training_order_is_reshuffled_every_epoch_and_reproducible() -> None:
    sampler = EpochBatchSampler(100, 10, shuffle=True, seed=3)
    e0 = np.concatenate(sampler.batches(0))
    e1 = np.concatenate(sampler.batches(1))
    assert sorted(e0) == list(range(100)) and sorted(e1) == list(range(100))
    assert not np.array_equal(e0, e1)
    again = EpochBatchSampler(100, 10, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate(again.batches(1)), e1)
    assert not np.array_equal(np.concatenate(EpochBatchSampler(100, 10, shuffle=True, seed=4).batches(1)), e1)


def test_ddp_shards_are_the_pieces_of_the_single_process_batches() -> None:
    single = EpochBatchSampler(103, 8, shuffle=True, seed=1)
    ranks = [EpochBatchSampler(103, 4, shuffle=True, seed=1, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 13
    for big, *pieces in zip(single.batches(5), *(r.batches(5) for r in ranks), strict=True):
        joined = np.concatenate(pieces)
        if len(big) == 8:
            np.testing.assert_array_equal(joined, big)
        else:  # the last partial batch: every rank gets an equal piece, padded
            assert set(big) <= set(joined) and len(pieces[0]) == len(pieces[1])


def test_drop_last_and_sequential_validation() -> None:
    assert len(EpochBatchSampler(103, 8, shuffle=True, drop_last=True)) == 12
    val = EpochBatchSampler(20, 8, shuffle=False)
    np.testing.assert_array_equal(np.concatenate(val.batches(3)), np.arange(20))


def test_on_disk_cache_is_built_once_and_reused(cu_frames: list[ase.Atoms], _isolated_cache: Path) -> None:
    config = {**CU, "pre_batch": "on_disk"}
    dm = GraphDataModule(config, train_data=dataset_path("cu_emt"))
    dm.prepare_data()
    folders = [p for p in _isolated_cache.iterdir()]
    assert len(folders) == 1 and (folders[0] / "manifest.json").exists()
    stamp = (folders[0] / "positions.bin").stat().st_mtime_ns
    dm2 = GraphDataModule(config, train_data=dataset_path("cu_emt"))
    dm2.prepare_data()
    dm2.setup("fit")
    assert (folders[0] / "positions.bin").stat().st_mtime_ns == stamp, "the cache was rebuilt"
    assert isinstance(dm2.split_arrays("train"), MappedArrays)
    assert not any(Path.cwd().glob("*.bin")), "nothing is written to the working directory"
    # a different cutoff is a different cache
    GraphDataModule({**config, "cut_off": 4.0}, train_data=dataset_path("cu_emt")).prepare_data()
    assert len(list(_isolated_cache.iterdir())) == 2


def test_damaged_or_stale_cache_is_rebuilt(cu_frames: list[ase.Atoms], _isolated_cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "cu.extxyz"
    ase.io.write(path, cu_frames[:20])
    config = {**CU, "pre_batch": "on_disk"}
    GraphDataModule(config, train_data=path).prepare_data()
    (folder,) = list(_isolated_cache.iterdir())
    reference = np.array(MappedArrays(folder)["positions"])
    # truncate a file: detected by size, rebuilt
    with open(folder / "positions.bin", "r+b") as handle:
        handle.truncate(100)
    dm = GraphDataModule(config, train_data=path)
    dm.setup("fit")
    np.testing.assert_array_equal(np.asarray(dm.split_arrays("train")["positions"]), reference)
    # flip bytes without changing the size: detected by checksum, rebuilt
    with open(folder / "positions.bin", "r+b") as handle:
        handle.seek(40)
        handle.write(b"\x00" * 16)
    dm = GraphDataModule(config, train_data=path)
    dm.setup("fit")
    np.testing.assert_array_equal(np.asarray(dm.split_arrays("train")["positions"]), reference)
    # change the file: a new key, never the stale cache
    ase.io.write(path, cu_frames[20:30])
    dm = GraphDataModule(config, train_data=path)
    dm.setup("fit")
    assert dm.num_structures("train") == 10


def test_a_crash_while_writing_leaves_no_cache(tmp_path: Path) -> None:
    class Crash(RuntimeError):
        pass

    with pytest.raises(Crash), CacheWriter(tmp_path, "key") as writer:
        writer.append({"atom_ptr": np.array([0, 2]), "atomic_numbers": np.array([1, 1], dtype=np.int16)})
        raise Crash
    assert list(tmp_path.iterdir()) == [], "no temporary or final folder is left"


def test_on_disk_with_worker_processes(ethanol: list[ase.Atoms]) -> None:
    config = {**ETHANOL, "pre_batch": "on_disk", "num_workers": 2, "train": {"batch_size": 25}}
    dm = GraphDataModule(config, train_data=ethanol[:100])
    dm.prepare_data()
    dm.setup("fit")
    with_workers = _epoch_batches(dm, 2)
    dm_plain = GraphDataModule({**config, "num_workers": 0}, train_data=ethanol[:100])
    dm_plain.setup("fit")
    for a, b in zip(with_workers, _epoch_batches(dm_plain, 2), strict=True):
        _assert_batches_equal(a, b)


def test_statistics_match_a_direct_computation(small_molecules: list[ase.Atoms]) -> None:
    frames = small_molecules
    dm = GraphDataModule({"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 5.0}, train_data=frames)
    dm.setup("fit")
    stats = dm.statistics
    elements = sorted({int(z) for f in frames for z in f.numbers})
    assert stats.elements == elements
    counts = np.array([[np.sum(f.numbers == z) for z in elements] for f in frames], dtype=float)
    energies = np.array([f.get_potential_energy() for f in frames])
    references, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    np.testing.assert_allclose([stats.element_reference[z] for z in elements], references, rtol=1e-9)
    residual = (energies - counts @ references) / counts.sum(axis=1)
    np.testing.assert_allclose(stats.per_atom_energy_mean, residual.mean(), atol=1e-9)
    np.testing.assert_allclose(stats.per_atom_energy_std, residual.std(), rtol=1e-9)
    forces = np.concatenate([f.get_forces() for f in frames])
    np.testing.assert_allclose(stats.force_rms, np.sqrt(np.mean(forces**2)), rtol=1e-12)
    n_edges = build_graphs(frames, dm.config, with_labels=False)["edge_ptr"][-1]
    np.testing.assert_allclose(stats.avg_num_neighbours, n_edges / counts.sum())
    # the references explain the xTB energies (hundreds of eV) to within a few eV per molecule
    assert np.abs(energies - counts @ references).max() < 0.05 * np.abs(energies).max()


def test_smiles_with_atom_and_bond_features_batch() -> None:
    config = {
        "atom_features": ["aromatic", "hybridisation"], "bond_features": True, "cut_off": 3.0,
        "pre_batch": None, "elements": ["H", "C", "N", "O"],
    }
    dm = GraphDataModule(config, predict_data=["c1ccccc1O", "CC#N"])
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch[K.NODE_ATTRS].shape == (batch.num_nodes, 4 + 1 + 7)
    bonded = batch[K.EDGE_ATTRS][:, 0] == 1
    # phenol has 13 bonds, acetonitrile 5; each appears in both directions
    assert int(bonded.sum()) == 2 * (13 + 5)
    assert batch[K.EDGE_ATTRS].shape[1] == 7


def test_cache_dir_default_is_not_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from physicsml_like.config import default_cache_dir

    monkeypatch.delenv("PHYSICSML_LIKE_CACHE")
    assert default_cache_dir() != Path(os.getcwd())
    assert "physicsml_like" in str(default_cache_dir())
