"""Large-scale pre-batching (slow: run with ``make test-slow``).

An ``on_disk`` pass over 300,000 structures must keep the process memory flat: the packed graphs
are memory-mapped and the touched pages are handed back every so often, so resident memory stays
near the release budget however large the cache is (here the budget is lowered to 16 MB against
a cache of about 160 MB). A second datamodule on the same data must reuse the cache instead of
rebuilding it. ``benchmarks/data_pipeline.py`` measures the same at 1,000,000 structures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import physicsml_like.data.datamodule as datamodule_module
from physicsml_like.data import GraphDataModule

N_STRUCTURES = 300_000


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _synthetic_columns(n: int) -> dict[str, list]:
    """Small random molecules (3-6 atoms of H, C, O) with energies and forces, as columns."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(3, 7, n)
    return {
        "atomic_numbers": [rng.choice([1, 6, 8], k) for k in sizes],
        "coordinates": [rng.normal(0.0, 0.7, (k, 3)) for k in sizes],
        "energy": list(rng.normal(-50.0, 5.0, n)),
        "forces": [rng.normal(0.0, 0.5, (k, 3)) for k in sizes],
    }


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*no neighbour:UserWarning")  # a few random atoms sit apart
def test_on_disk_pass_keeps_memory_flat_and_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datamodule_module, "_RESIDENT_BUDGET_BYTES", 16 << 20)
    columns = _synthetic_columns(N_STRUCTURES)
    config = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 3.0, "pre_batch": "on_disk",
              "cache_dir": str(tmp_path / "cache"), "train": {"batch_size": 32}}
    datamodule = GraphDataModule(config, train_data=columns, progress=False)
    datamodule.prepare_data()
    datamodule.setup("fit")
    cache_files = sorted((tmp_path / "cache").rglob("*.bin"))
    cache_mb = sum(path.stat().st_size for path in cache_files) / 2**20
    assert cache_mb > 100, "the cache must be much larger than the release budget for this test to mean anything"
    written = {path: path.stat().st_mtime_ns for path in cache_files}

    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(0)
    before, peak, seen = _rss_mb(), 0.0, 0
    for k, batch in enumerate(loader):
        seen += batch.num_graphs
        if k % 50 == 0:
            peak = max(peak, _rss_mb())
    peak = max(peak, _rss_mb())
    assert seen == N_STRUCTURES
    assert peak - before < 48, f"RSS grew by {peak - before:.0f} MB over one on_disk pass over a {cache_mb:.0f} MB cache"

    again = GraphDataModule(config, train_data=columns, progress=False)
    again.prepare_data()
    again.setup("fit")
    assert {path: path.stat().st_mtime_ns for path in sorted((tmp_path / "cache").rglob("*.bin"))} == written
    first = next(iter(again.train_dataloader()))
    assert first.num_graphs == 32
