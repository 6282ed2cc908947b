"""Temporary names that say who is writing them, and removal of what dead writers left behind.

Caches, checkpoints and saved models are written under a temporary name and renamed into place,
so a crash never leaves a file that reads as good; but a process killed mid-write (``kill -9``,
out of memory, a lost node) cannot delete its temporary. Each temporary therefore carries the
host and process id of its writer (``<name>.tmp-<host>-<pid>-<8 hex>``), and the next writer in
the same folder removes those whose process is gone. A temporary of a live process, of a process
on another host (a shared file system) or of a name it cannot parse is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

from ._logging import get_logger

__all__ = ["remove_dead_leftovers", "temporary_name", "writer_alive"]

_log = get_logger(__name__)
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"
# <base>.<tmp|old>-<host>-<pid>-<tag>; the tag is exactly 8 hex digits, so host and pid split
# unambiguously even when the host name has dashes
_NAME = re.compile(r"^(?P<base>.+)\.(?P<kind>tmp|old)-(?P<host>.+)-(?P<pid>\d+)-(?P<tag>[0-9a-f]{8})$")
# names written before the host was part of them: <base>.tmp-<pid> and <base>.tmp-<pid>-<8 hex>
_LEGACY = re.compile(r"^(?P<base>.+)\.(?P<kind>tmp)-(?P<pid>\d+)(?:-[0-9a-f]{8})?$")


def temporary_name(name: str, kind: str = "tmp") -> str:
    """``<name>.<kind>-<host>-<pid>-<8 hex>``: unique, and naming the process that writes it."""
    return f"{name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def writer_alive(host: str, pid: int) -> bool:
    """False only when the writer certainly is gone: this host, and no process with that id."""
    if host != _HOST or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def _owner(name: str) -> tuple[str, int] | None:
    match = _NAME.match(name)
    if match:
        return match["host"], int(match["pid"])
    legacy = _LEGACY.match(name)
    if legacy:
        return _HOST, int(legacy["pid"])
    return None


def remove_dead_leftovers(folder: Path, *, hidden: bool | None = None) -> list[Path]:
    """Remove the temporaries of dead writers directly in ``folder``; return what was removed.

    ``hidden``: only names starting with a dot (``True``), only names that do not (``False``),
    or both (``None``).
    """
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        if hidden is not None and entry.name.startswith(".") != hidden:
            continue
        owner = _owner(entry.name)
        if owner is None or writer_alive(*owner):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)  # another process may be cleaning it too
        else:
            entry.unlink(missing_ok=True)
        if entry.exists():
            _log.warning("could not remove %s, left by a crashed writer (pid %d)", entry, owner[1])
            continue
        removed.append(entry)
    if removed:
        _log.info("removed %d leftover(s) of crashed writers in %s", len(removed), folder)
    return removed
