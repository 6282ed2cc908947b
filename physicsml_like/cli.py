"""Command line: ``physicsml-like demo``."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    """Build graphs of the bundled datasets and print what the datamodule sees."""
    from .data import GraphDataModule
    from .datasets import load_dataset

    for name, config in (
        ("ethanol", {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 5.0}),
        ("cu_emt", {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "y_stress": "stress", "cut_off": 5.0}),
    ):
        frames = load_dataset(name)
        t0 = time.perf_counter()
        dm = GraphDataModule(config, train_data=frames[: int(0.8 * len(frames))], validation_data=frames[int(0.8 * len(frames)) :])
        dm.setup("fit")
        built = time.perf_counter() - t0
        n, t0 = 0, time.perf_counter()
        for batch in dm.train_dataloader():
            n += batch.num_graphs
        rate = n / (time.perf_counter() - t0)
        stats = dm.statistics
        print(f"{name}: {len(frames)} structures, graphs built in {built:.2f} s, batches at {rate:,.0f} structures/s")
        print(f"  elements {stats.elements}, mean neighbours {stats.avg_num_neighbours:.1f}, "
              f"E0 {stats.element_reference}, force RMS {stats.force_rms:.3f} eV/Å")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="physicsml-like", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the demo on a bundled dataset").set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
