"""The Lightning datamodule: user data in, batches of graphs out.

Expensive one-off work happens once: ``prepare_data`` builds ``on_disk`` caches (on one process
per node), ``setup`` builds in-memory graphs or opens the caches, fixes the element mapping and
computes the training statistics. Batches are then drawn by :class:`EpochBatchSampler`, whose
order depends only on ``(seed, epoch)``, so the three batching modes and a resumed run see
identical batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset
from torch_geometric.data import Batch, Data

from ..config.datamodule import DataModuleConfig
from ..errors import DataError
from .build import build_graphs, open_or_build_cache
from .cache import MappedArrays
from .graphs import ElementMapping, GraphBatcher
from .sampler import EpochBatchSampler
from .sources import describe_source
from .statistics import DatasetStatistics, compute_statistics

__all__ = ["GraphDataModule", "PackedBatches", "StructureBatches"]

SPLITS = ("train", "validation", "test", "predict")
# Hand the pages of an on-disk cache back once this much of it has become resident. Batches are
# drawn in shuffled order, so each structure of a batch touches its own part of every array, and a
# page fault maps a whole fault-around window (64 KiB on Linux), so how much becomes resident
# cannot be told from the bytes read: the resident file-backed memory is read from
# /proc/self/statm after every batch instead (a few microseconds). Releasing costs later faults,
# so it waits for the budget to fill (measured on 1,000,000 structures: releasing every few
# batches kept the growth at 21 MB but iterated 4x slower than no release, which let 361 MB in).
_RESIDENT_BUDGET_BYTES = 256 << 20
_RELEASE_EVERY_BATCHES_WITHOUT_STATM = 256


def _resident_file_bytes() -> int | None:
    """Resident shared (file-backed) memory of this process; ``None`` where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[2]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _identity(batch: Batch) -> Batch:
    return batch


class PackedBatches(Dataset[Batch]):
    """Batches gathered from packed arrays; the key of an item is an array of structure indices."""

    def __init__(self, batcher: GraphBatcher) -> None:
        self.batcher = batcher
        self._batches = 0
        self._resident_after_release: int | None = None

    def __len__(self) -> int:
        return len(self.batcher)

    def __getstate__(self) -> dict[str, object]:
        # a worker process measures its own resident memory
        return {**self.__dict__, "_resident_after_release": None}

    def __getitem__(self, indices: np.ndarray) -> Batch:  # type: ignore[override]
        arrays = self.batcher.arrays
        mapped = isinstance(arrays, MappedArrays)
        if mapped and self._resident_after_release is None:
            self._resident_after_release = _resident_file_bytes()  # before this process touches the cache
        batch = self.batcher.gather(indices)
        if mapped:
            self._batches += 1
            self._keep_resident_memory_bounded(cast(MappedArrays, arrays))
        return batch

    def _keep_resident_memory_bounded(self, arrays: MappedArrays) -> None:
        resident = _resident_file_bytes()
        if resident is None or self._resident_after_release is None:
            if self._batches % _RELEASE_EVERY_BATCHES_WITHOUT_STATM == 0:
                arrays.release()
            return
        if resident - self._resident_after_release > _RESIDENT_BUDGET_BYTES:
            arrays.release()
            self._resident_after_release = _resident_file_bytes()


class StructureBatches(Dataset[Batch]):
    """One ``Data`` per structure (built once), collated by torch-geometric per batch."""

    def __init__(self, graphs: list[Data]) -> None:
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, indices: np.ndarray) -> Batch:  # type: ignore[override]
        return Batch.from_data_list([self.graphs[i] for i in indices])


@dataclass
class _Split:
    source: str
    arrays: Mapping[str, np.ndarray]
    with_labels: bool
    dataset: Dataset[Batch] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_structures(self) -> int:
        return len(self.arrays["atom_ptr"]) - 1


class GraphDataModule(L.LightningDataModule):
    """Builds graphs from user data and serves them in batches.

    Parameters
    ----------
    config: a :class:`DataModuleConfig` or a dict of its fields.
    train_data, validation_data, test_data, predict_data: any supported source (paths,
        ``ase.Atoms`` lists, DataFrames, dicts of columns, SMILES, RDKit molecules).
    element_mapping: fixed mapping (a trained model's); otherwise from the config or inferred
        from the training data.
    statistics: fixed statistics (a trained model's); otherwise computed from the training data.
    energy_key: the graph scalar treated as energy in the statistics (default: the first one).
    forces_key: the node vector treated as forces (default: ``y_node_vector``).

    Examples
    --------
    >>> from physicsml_like.datasets import load_dataset
    >>> dm = GraphDataModule({"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                      train_data=load_dataset("ethanol")[:40])
    >>> dm.setup("fit")
    >>> batch = next(iter(dm.train_dataloader()))
    >>> batch.num_graphs, batch.y_graph_scalars.shape
    (32, torch.Size([32, 1]))
    """

    def __init__(
        self,
        config: DataModuleConfig | dict[str, Any] | None = None,
        *,
        train_data: Any = None,
        validation_data: Any = None,
        test_data: Any = None,
        predict_data: Any = None,
        element_mapping: ElementMapping | None = None,
        statistics: DatasetStatistics | None = None,
        energy_key: str | None = None,
        forces_key: str | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        self.config = DataModuleConfig.from_any(config)
        self._data = {"train": train_data, "validation": validation_data, "test": test_data, "predict": predict_data}
        self._mapping = element_mapping
        self._statistics = statistics
        scalars = self.config.y_graph_scalars or []
        self.energy_key = energy_key if energy_key is not None else (scalars[0] if scalars else None)
        if self.energy_key is not None and self.energy_key not in scalars:
            raise DataError(f"energy_key {self.energy_key!r} is not one of y_graph_scalars {scalars}")
        self.forces_key = forces_key if forces_key is not None else self.config.y_node_vector
        self.progress = progress
        self._splits: dict[str, _Split] = {}
        self._samplers: dict[str, EpochBatchSampler] = {}
        self._prepared = False
        self._opened: dict[str, MappedArrays] = {}  # caches opened by prepare_data in this process

    # ------------------------------------------------------------------ properties
    @property
    def element_mapping(self) -> ElementMapping:
        if self._mapping is None:
            raise RuntimeError("the element mapping is known after setup()")
        return self._mapping

    @property
    def statistics(self) -> DatasetStatistics:
        if self._statistics is None:
            raise RuntimeError("statistics are computed in setup() from training data")
        return self._statistics

    def has_split(self, split: str) -> bool:
        return self._data.get(split) is not None

    def split_arrays(self, split: str) -> Mapping[str, np.ndarray]:
        """The packed arrays of a split (after setup)."""
        return self._splits[split].arrays

    def num_structures(self, split: str) -> int:
        return self._splits[split].num_structures

    def elements_present(self) -> list[int]:
        """Atomic numbers in any split built so far, ascending (readable even when
        :meth:`setup` refused an element outside the mapping: the graphs are built first)."""
        counts = np.zeros(119, dtype=np.int64)
        for split_data in self._splits.values():
            counts += np.bincount(np.asarray(split_data.arrays["atomic_numbers"], dtype=np.int64), minlength=119)
        return [int(z) for z in np.flatnonzero(counts)]

    def ordered_batches(self, split: str, batch_size: int = 32) -> Iterator[Batch]:
        """The batches of a split in stored order, unshuffled and unsharded (after setup): for
        evaluating a model on every structure of the split, aligned with :meth:`split_arrays`."""
        dataset = self._splits[split].dataset
        assert dataset is not None, "after setup()"
        n = self._splits[split].num_structures
        for start in range(0, n, batch_size):
            yield dataset[np.arange(start, min(start + batch_size, n))]  # type: ignore[index]

    # ------------------------------------------------------------------ building
    def _wants_labels(self, split: str) -> bool:
        return split != "predict"

    def prepare_data(self) -> None:
        """Build the on-disk caches once (Lightning calls this on one process per node)."""
        if self.config.pre_batch != "on_disk" or self._prepared:
            return
        self._prepared = True
        for split in SPLITS:
            data = self._data[split]
            if data is not None:
                self._opened[split] = open_or_build_cache(
                    data, self.config, with_labels=self._wants_labels(split), progress=self.progress
                )

    def _build_split(self, split: str) -> _Split:
        data = self._data[split]
        with_labels = self._wants_labels(split)
        if self.config.pre_batch == "on_disk":
            opened = self._opened.pop(split, None)
            arrays: Mapping[str, np.ndarray] = opened if opened is not None else open_or_build_cache(
                data, self.config, with_labels=with_labels, progress=self.progress
            )
        else:
            arrays = build_graphs(data, self.config, with_labels=with_labels, progress=self.progress)
        return _Split(describe_source(data), arrays, with_labels)

    def setup(self, stage: str | None = None) -> None:
        """Build or open the graphs of every split that has data; fix mapping and statistics."""
        for split in SPLITS:
            if self._data[split] is not None and split not in self._splits:
                self._splits[split] = self._build_split(split)
        self._resolve_mapping()
        for split_data in self._splits.values():
            self.element_mapping.check(
                np.asarray(split_data.arrays["atomic_numbers"]),
                split_data.source,
                np.asarray(split_data.arrays["row_ids"]),
                np.asarray(split_data.arrays["atom_ptr"]),
            )
        if self._statistics is None and "train" in self._splits:
            self._statistics = self._compute_statistics(self._splits["train"].arrays)
        for split_data in self._splits.values():
            if split_data.dataset is None:
                batcher = GraphBatcher(split_data.arrays, self.element_mapping)
                if self.config.pre_batch is None:
                    split_data.dataset = StructureBatches([batcher.get(i) for i in range(len(batcher))])
                else:
                    split_data.dataset = PackedBatches(batcher)

    def _resolve_mapping(self) -> None:
        if self._mapping is not None:
            return
        if self.config.elements is not None:
            from ase.data import atomic_numbers as symbol_to_z

            zs = []
            for element in self.config.elements:
                if isinstance(element, str):
                    if element not in symbol_to_z:
                        raise DataError(f"unknown element symbol {element!r} in elements", field="elements")
                    zs.append(symbol_to_z[element])
                else:
                    zs.append(int(element))
            self._mapping = ElementMapping(elements=tuple(zs))
        elif self.config.num_elements is not None:
            self._mapping = ElementMapping(num_elements=self.config.num_elements)
        elif "train" in self._splits:
            z = np.asarray(self._splits["train"].arrays["atomic_numbers"], dtype=np.int64)
            self._mapping = ElementMapping(elements=tuple(int(x) for x in np.flatnonzero(np.bincount(z, minlength=119))))
        else:
            raise DataError(
                "no element mapping: give train_data, or set elements / num_elements in the config"
            )

    def _compute_statistics(self, arrays: Mapping[str, np.ndarray]) -> DatasetStatistics:
        return compute_statistics(
            arrays,
            graph_scalar_names=self.config.y_graph_scalars,
            node_scalar_names=self.config.y_node_scalars,
            edge_scalar_names=self.config.y_edge_scalars,
            graph_vector_name=self.config.y_graph_vector,
            node_vector_name=self.config.y_node_vector,
            energy_key=self.energy_key,
            forces_key=self.forces_key,
        )

    # ------------------------------------------------------------------ loaders
    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def sampler(self, split: str) -> EpochBatchSampler:
        """The batch sampler of a split (after setup)."""
        if split not in self._samplers:
            rank, world = self._rank_world()
            training = split == "train"
            self._samplers[split] = EpochBatchSampler(
                self._splits[split].num_structures,
                getattr(self.config, split).batch_size,
                shuffle=training and self.config.shuffle,
                drop_last=training and self.config.drop_last,
                seed=self.config.shuffle_seed,
                rank=rank if split != "predict" else 0,
                world_size=world if split != "predict" else 1,
            )
        return self._samplers[split]

    def _loader(self, split: str) -> DataLoader:
        if split not in self._splits:
            raise RuntimeError(f"no {split} data was given to the datamodule")
        workers = self.config.resolved_num_workers()
        return DataLoader(
            self._splits[split].dataset,  # type: ignore[arg-type]
            sampler=self.sampler(split),
            batch_size=None,
            collate_fn=_identity,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        # no validation data: an empty list tells Lightning to skip validation
        return self._loader("validation") if "validation" in self._splits else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The sampler's whole random state: its seed (the epoch is restored by Lightning)."""
        state: dict[str, Any] = {"seed": self.config.shuffle_seed, "shuffle": self.config.shuffle}
        if "train" in self._samplers:
            state["epoch"] = self._samplers["train"].epoch
            state["num_train"] = self._samplers["train"].num_items
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("seed") != self.config.shuffle_seed:
            raise DataError(
                f"the checkpoint was trained with shuffle seed {state_dict.get('seed')} but the config "
                f"now has {self.config.shuffle_seed} (datamodule.seed, or the model's seed when that is "
                "unset); resuming would change the batches",
                field="seed",
            )
        if "epoch" in state_dict and "train" in self._splits:
            self.sampler("train").set_epoch(int(state_dict["epoch"]))
