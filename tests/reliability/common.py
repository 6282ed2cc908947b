"""Shared pieces of the fault tests: a tiny model that trains in seconds, and running a script
in its own process (so that it can be killed, or run as two DDP ranks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).parent / "scripts"


def tiny_fields(root: Path, *, epochs: int = 4, **fields: Any) -> dict[str, Any]:
    """A small EGNN on ethanol (about a second per epoch on one core), validated every epoch."""
    from tests.training.helpers import tiny_egnn

    return tiny_egnn(root, epochs=epochs, **fields)


def ethanol_split() -> tuple[list[Any], list[Any]]:
    """40 training and 8 validation structures."""
    from physicsml_like.datasets import load_dataset

    frames = load_dataset("ethanol")
    return frames[:40], frames[40:48]


def run_script(name: str, *args: object, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<name>`` with this checkout importable, on one thread."""
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=full
    )


def start_script(name: str, *args: object, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``scripts/<name>`` without waiting for it."""
    full = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full,
    )
