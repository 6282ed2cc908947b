"""Keep freed memory in the process instead of handing it back to the OS at every step.

glibc serves allocations above its mmap threshold (128 KiB, raised dynamically up to 32 MiB)
with fresh ``mmap`` pages and returns them at ``free``; an MD step of a periodic cell allocates
per-edge tensors of 10-30 MB several times, so every step pays page faults for memory it used a
step before. Raising the mmap and trim thresholds makes glibc reuse that memory: on the 108-atom
copper MACE an ASE MD step went from 211-242 ms to 143 ms in float64 and from 96-114 ms to
75-78 ms in float32 (AMD EPYC, 2 threads, alternating processes; ``benchmarks/md_step.py``).

The setting is process-wide and only changes when freed memory is returned to the OS (the
resident memory stays near its peak), so it is applied once, by the engines that run many
steps (:class:`~physicsml_like.integrations.potential.Potential`), only with glibc, and not when
the user set glibc's own ``MALLOC_*`` variables or ``glibc.malloc`` tunables, or set
``PHYSICSML_LIKE_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory"]

OPT_OUT = "PHYSICSML_LIKE_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, (1 << 31) - 1), (_M_TOP_PAD, 1 << 28))
_applied: bool | None = None


def _keeps_glibc_defaults() -> bool:
    """Whether the user turned this off or configures glibc's malloc themselves."""
    if os.environ.get(OPT_OUT, "1").strip().lower() in {"0", "false", "no", "off"}:
        return True
    if any(k.startswith("MALLOC_") for k in os.environ) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return True
    return not sys.platform.startswith("linux")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; whether they are raised."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if _keeps_glibc_defaults():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _applied = all(mallopt(option, value) == 1 for option, value in _SETTINGS)
    return _applied
