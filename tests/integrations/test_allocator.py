"""The engines keep freed memory for the next step (glibc's thresholds), and the user can refuse."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# allocate and free 64 MB of tensors, then report whether the process still holds them (VmRSS)
_SCRIPT = textwrap.dedent("""
    import torch
    from physicsml_like._allocator import keep_freed_memory
    applied = keep_freed_memory()
    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
    before = rss_mb()
    x = torch.ones(8 * 1024 * 1024, dtype=torch.float64)  # 64 MB, touched
    del x
    print(applied, round(rss_mb() - before))
""")


def _run(**env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k not in {"PHYSICSML_LIKE_KEEP_FREED_MEMORY", "GLIBC_TUNABLES"}}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env={**clean, **env}, capture_output=True, text=True, check=True)
    applied, kept = out.stdout.split()
    return applied == "True", int(kept)


def test_freed_memory_is_kept_by_default_and_returned_when_refused() -> None:
    applied, kept = _run()
    assert applied
    assert kept > 50, f"only {kept} MB of a freed 64 MB buffer stayed in the process"
    refused, returned = _run(PHYSICSML_LIKE_KEEP_FREED_MEMORY="0")
    assert not refused
    assert returned < 10, f"{returned} MB stayed although the tuning was refused"


@pytest.mark.parametrize("setting", [{"MALLOC_ARENA_MAX": "2"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=65536"}])
def test_glibc_settings_of_the_user_are_left_alone(setting: dict[str, str]) -> None:
    applied, _ = _run(**setting)
    assert not applied
