"""What the user's code after ``train()`` does on every rank of a distributed run.

Under DDP, Lightning re-runs the user's script on every rank, so ``save``, ``predict`` and ``test``
are called once per rank. Writes happen on rank 0 alone and the other ranks wait until they are
done (and fail with it when it fails); reads and predictions run on every rank, each on its own
device, and give every rank the same result. Rank 0 never waits for the others, so scripts that
call ``save`` on rank 0 only (``if trainer.global_rank == 0``) keep working.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["on_rank_zero", "report_failed_ranks_at_exit", "single_device", "world"]

T = TypeVar("T")
_calls: Counter[str] = Counter()
_watched: set[int] = set()


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the running process group; ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _default_store() -> Any | None:
    try:
        from torch.distributed.distributed_c10d import _get_default_store

        return _get_default_store()
    except (ImportError, RuntimeError, ValueError):
        return None


def on_rank_zero(key: str, write: Callable[[], T], *, timeout: timedelta | None = None) -> T | None:
    """Run ``write`` on rank 0 only; every other rank waits until rank 0 has finished it and
    raises when rank 0 failed. Outside a process group, simply ``write()``.

    Rank 0 announces the outcome in the process group's key-value store (no collective call), so
    it never blocks on ranks that do not call this. ``key`` names the operation (e.g. the target
    path); the n-th call with a key on one rank matches the n-th on the others.
    """
    rank, size = world()
    if size == 1:
        return write()
    _calls[key] += 1
    store_key = f"physicsml_like/{key}/{_calls[key]}"
    store = _default_store()
    if store is None:  # no store to announce through: a plain barrier after the write
        result = write() if rank == 0 else None
        dist.barrier()
        return result
    if rank == 0:
        try:
            result = write()
        except BaseException as err:
            store.set(store_key, f"error: {type(err).__name__}: {err}")
            raise
        store.set(store_key, "ok")
        return result
    store.wait([store_key], timeout or timedelta(minutes=30))
    outcome = store.get(store_key).decode()
    if outcome != "ok":
        raise RuntimeError(f"rank 0 failed to {key} ({outcome.removeprefix('error: ')}); rank {rank} stops too")
    return None


def single_device(accelerator: str) -> int | list[int]:
    """The ``devices`` for work every rank does alone: its own GPU under DDP, else one device."""
    rank, size = world()
    if size > 1 and accelerator != "cpu" and torch.cuda.is_available():
        return [int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()]
    return 1


def report_failed_ranks_at_exit(trainer: Any) -> None:
    """Make the launching process exit non-zero when a rank it launched failed.

    Lightning's launcher notices a failed rank only every few seconds and only while it runs; a
    rank that fails in the user's code after ``train()`` (for example in ``save``) would otherwise
    leave rank 0, and so the whole command, ending with exit code 0.
    """
    procs = getattr(getattr(trainer.strategy, "launcher", None), "procs", None)
    if not procs or id(procs) in _watched:
        return
    _watched.add(id(procs))
    atexit.register(_exit_with_failed_ranks, list(procs))


def _exit_with_failed_ranks(procs: list[Any]) -> None:
    codes = [(rank, proc.pid, proc.wait()) for rank, proc in enumerate(procs, start=1)]
    failed = [(rank, pid, code) for rank, pid, code in codes if code != 0]
    if not failed:
        return
    rank, pid, code = failed[0]
    sys.stdout.flush()
    print(f"physicsml_like: rank {rank} (pid {pid}) exited with code {code}", file=sys.stderr, flush=True)
    os._exit(code if code > 0 else 128 - code)
