"""On-disk caches of packed graphs: written once, atomically, and memory-mapped afterwards.

Layout: ``<cache_dir>/<key>/`` holds one raw binary file per packed array and ``manifest.json``
(dtype, shape, byte size and checksum of each). The folder is written under a temporary name,
every file is fsync'ed, the manifest is written last, and only then is the folder renamed to its
key. A crash therefore leaves a ``*.tmp-<host>-<pid>-*`` folder that is never read (and that the
next build in the folder removes once its process is gone), and a cache that is found damaged (missing file, wrong size, wrong checksum, unreadable manifest) is removed and rebuilt.

Reading uses ``mmap`` directly (not ``np.memmap``) so that pages already used can be handed back
with ``madvise(MADV_DONTNEED)``: resident memory then stays flat however large the cache is.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._files import remove_dead_leftovers, temporary_name

__all__ = ["CACHE_FORMAT_VERSION", "CacheWriter", "MappedArrays", "cache_is_valid", "open_cache"]

CACHE_FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
# offset arrays are written chunk by chunk; each chunk's values are shifted by what came before
_PTR_BASE = {"atom_ptr": "atomic_numbers", "edge_ptr": "edge_index"}


class CacheWriter:
    """Appends packed-array chunks to a temporary folder, then commits it under its key.

    Use as a context manager: leaving the block without :meth:`commit` (an exception, a crash)
    deletes the temporary folder, so nothing half-written can be read as a cache.
    """

    def __init__(self, cache_dir: Path, key: str, metadata: dict[str, Any] | None = None) -> None:
        self.final = cache_dir / key
        cache_dir.mkdir(parents=True, exist_ok=True)
        # builds killed earlier (kill -9, out of memory) could not delete their folders
        remove_dead_leftovers(cache_dir, hidden=False)
        self.tmp = cache_dir / temporary_name(key)
        self.tmp.mkdir()
        self.metadata = dict(metadata or {})
        self._files: dict[str, Any] = {}
        self._hash: dict[str, Any] = {}
        self._dtype: dict[str, str] = {}
        self._tail: dict[str, tuple[int, ...]] = {}
        self._rows: dict[str, int] = {}
        self._ptr_last: dict[str, int] = {}
        self._committed = False

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.abort()

    def append(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Append one chunk (same keys every time; offsets are made global here)."""
        if self._files and set(arrays) != set(self._files):
            raise ValueError(f"chunk keys changed: {sorted(arrays)} vs {sorted(self._files)}")
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            if name in _PTR_BASE:
                base = self._ptr_last.get(name)
                array = array.astype(np.int64) + (base or 0)
                if base is not None:
                    array = array[1:]  # drop the repeated leading offset
                self._ptr_last[name] = int(array[-1]) if len(array) else (base or 0)
            if name not in self._files:
                self._files[name] = open(self.tmp / f"{name}.bin", "wb")  # noqa: SIM115
                self._hash[name] = hashlib.blake2b(digest_size=16)
                self._dtype[name] = array.dtype.str
                self._tail[name] = tuple(array.shape[1:])
                self._rows[name] = 0
            elif array.dtype.str != self._dtype[name] or tuple(array.shape[1:]) != self._tail[name]:
                raise ValueError(f"array {name!r} changed dtype or shape between chunks")
            raw = array.reshape(-1).view(np.uint8).data if array.size else memoryview(b"")
            self._files[name].write(raw)
            self._hash[name].update(raw)
            self._rows[name] += len(array)

    def commit(self) -> Path:
        """fsync, write the manifest last, rename into place; return the cache folder."""
        entries = {}
        for name, handle in self._files.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            shape = (self._rows[name], *self._tail[name])
            entries[name] = {
                "dtype": self._dtype[name],
                "shape": list(shape),
                "nbytes": int(np.prod(shape, dtype=np.int64)) * np.dtype(self._dtype[name]).itemsize,
                "blake2b": self._hash[name].hexdigest(),
            }
        manifest = {"format": CACHE_FORMAT_VERSION, "arrays": entries, "metadata": self.metadata}
        with open(self.tmp / _MANIFEST, "w") as handle:
            json.dump(manifest, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.rename(self.tmp, self.final)
        except OSError:
            # another process (another DDP rank, a parallel run) committed the same key first
            if cache_is_valid(self.final, verify=False):
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                shutil.rmtree(self.final, ignore_errors=True)
                os.rename(self.tmp, self.final)
        self._committed = True
        return self.final

    def abort(self) -> None:
        for handle in self._files.values():
            with contextlib.suppress(OSError):  # a full disk fails the final flush; the folder goes anyway
                handle.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        with open(path / _MANIFEST) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT_VERSION:
        return None
    return manifest


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def cache_is_valid(path: Path, *, verify: bool = True) -> bool:
    """True when the manifest reads, every file has its size and (with ``verify``) its checksum."""
    manifest = _read_manifest(path)
    if manifest is None:
        return False
    for name, entry in manifest["arrays"].items():
        file = path / f"{name}.bin"
        if not file.exists() or file.stat().st_size != entry["nbytes"]:
            return False
        if verify and _file_digest(file) != entry["blake2b"]:
            return False
    return True


class MappedArrays(Mapping[str, np.ndarray]):
    """Read-only arrays memory-mapped from a cache folder; picklable (maps reopen lazily).

    :meth:`release` hands back the pages already touched, keeping resident memory flat;
    :class:`GraphBatcher` users call it every so often while iterating.
    """

    def __init__(self, path: Path) -> None:
        manifest = _read_manifest(path)
        if manifest is None:
            raise FileNotFoundError(f"no readable cache manifest in {path}")
        self.path = path
        self.entries: dict[str, dict[str, Any]] = manifest["arrays"]
        self.metadata: dict[str, Any] = manifest.get("metadata", {})
        self._maps: dict[str, mmap.mmap] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "entries": self.entries, "metadata": self.metadata}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._maps = {}
        self._arrays = {}

    def __getitem__(self, name: str) -> np.ndarray:
        array = self._arrays.get(name)
        if array is not None:
            return array
        entry = self.entries[name]
        dtype = np.dtype(entry["dtype"])
        shape = tuple(entry["shape"])
        if entry["nbytes"] == 0:
            array = np.zeros(shape, dtype=dtype)
        else:
            with open(self.path / f"{name}.bin", "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[name] = mapped
            array = np.frombuffer(mapped, dtype=dtype).reshape(shape)
        self._arrays[name] = array
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def release(self) -> None:
        """Drop touched pages from this process's resident set (they stay in the page cache)."""
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        for mapped in self._maps.values():
            mapped.madvise(mmap.MADV_DONTNEED)


def open_cache(path: Path, *, verify: bool) -> MappedArrays | None:
    """Open a cache folder, or remove it and return ``None`` when it is damaged or stale."""
    if not path.exists():
        return None
    if not cache_is_valid(path, verify=verify):
        shutil.rmtree(path, ignore_errors=True)
        return None
    return MappedArrays(path)
