"""Which structures form each batch: reshuffled every epoch, sharded across DDP ranks.

The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees exactly the
batches an uninterrupted one would, and all three batching modes see the same batches. Under
DDP every *global* batch (``batch_size * world_size`` structures) is cut into one contiguous
piece per rank: the ranks together see what a single process with the larger batch would see.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

__all__ = ["EpochBatchSampler"]


class EpochBatchSampler(Sampler[np.ndarray]):
    """Yields one ``int64`` index array per batch.

    Parameters
    ----------
    num_items: structures in the split.
    batch_size: structures per batch on each rank.
    shuffle: draw a new permutation every epoch (else keep the stored order).
    drop_last: drop the final incomplete global batch.
    seed: base seed of the permutations.
    rank, world_size: this process's place under DDP.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.num_items = num_items
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of structures in ``epoch``."""
        if not self.shuffle:
            return np.arange(self.num_items, dtype=np.int64)
        rng = np.random.default_rng([self.seed, epoch])
        return rng.permutation(self.num_items).astype(np.int64)

    def __len__(self) -> int:
        global_size = self.batch_size * self.world_size
        if self.drop_last:
            return self.num_items // global_size
        return math.ceil(self.num_items / global_size)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of ``epoch``."""
        order = self.order(epoch)
        global_size = self.batch_size * self.world_size
        out = []
        for g in range(len(self)):
            chunk = order[g * global_size : (g + 1) * global_size]
            if len(chunk) < global_size and self.world_size > 1:
                # the last partial global batch: equal pieces for every rank, padded from the
                # start of the order (as DistributedSampler does) so no rank waits forever
                per_rank = math.ceil(len(chunk) / self.world_size)
                need = per_rank * self.world_size - len(chunk)
                chunk = np.concatenate([chunk, order[:need]])
                out.append(chunk[self.rank * per_rank : (self.rank + 1) * per_rank])
            else:
                piece = len(chunk) // self.world_size if len(chunk) < global_size else self.batch_size
                out.append(chunk[self.rank * piece : (self.rank + 1) * piece])
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self.batches(self.epoch)
