"""Build the on-disk cache of 200 ethanol structures in a cache folder.

    python build_cache.py CACHE_DIR kill       # SIGKILL itself after writing the arrays, before the manifest
    python build_cache.py CACHE_DIR GO_FILE    # wait until GO_FILE exists, build, print the arrays' digest
"""

import hashlib
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

from physicsml_like.data import cache  # noqa: E402
from physicsml_like.data.datamodule import GraphDataModule  # noqa: E402
from physicsml_like.datasets import load_dataset  # noqa: E402

CONFIG = {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 4.0, "pre_batch": "on_disk"}


def kill_after_flushing(writer: cache.CacheWriter) -> None:
    for handle in writer._files.values():
        handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    cache_dir, mode = Path(sys.argv[1]), sys.argv[2]
    frames = load_dataset("ethanol")[:200]
    if mode == "kill":
        cache.CacheWriter.commit = kill_after_flushing
    else:
        go = Path(mode)
        while not go.exists():
            time.sleep(0.01)
    dm = GraphDataModule({**CONFIG, "cache_dir": str(cache_dir)}, train_data=frames, progress=False)
    dm.prepare_data()
    dm.setup("fit")
    arrays = dm.split_arrays("train")
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    print(json.dumps({"folder": arrays.path.name, "digest": digest.hexdigest()}))


if __name__ == "__main__":
    main()
