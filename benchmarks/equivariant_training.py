"""Training-step speed and memory of the equivariant families on 108-atom copper cells.

    python benchmarks/equivariant_training.py --family nequip              # physicsml's default NequIP
    python benchmarks/equivariant_training.py --family allegro --threads 2
    python benchmarks/equivariant_training.py --family nequip --e3nn-convolution   # reference

The setting of the physicsml comparison: fcc Cu 3x3x3 (108 atoms, a = 3.61 Å), rattled by
0.05 Å, EMT energies and forces, cutoff 5 Å, batches of 8, float32, energy + force loss (forces
by autograd, so every step runs a double backward). Each run times ``--steps`` optimiser steps
after one warm-up step and prints steps/s (wall clock and per CPU second), the network's
parameter count and the peak resident memory of the process.

``--e3nn-convolution`` swaps NequIP's channel-major convolution for e3nn's generic
``TensorProduct`` (``"uvu"``, per-edge weights, what physicsml uses) with the same weights, to
measure what the layout buys.

``--keep-freed-memory`` reruns the benchmark with glibc told to keep freed memory instead of
handing it back to the system (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``): every
step allocates and frees per-edge tensors of hundreds of MB, and by default each allocation
page-faults its memory afresh. On 108-atom copper this made a NequIP step about a third faster
at the same peak memory. It is a setting of the process, so the package does not change it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

import numpy as np
import torch


def copper_cells(count: int) -> list[Any]:
    """Rattled 108-atom fcc copper cells with EMT labels."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    frames = []
    for seed in range(count):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        atoms.get_potential_energy()
        atoms.get_forces()
        frames.append(atoms)
    return frames


def use_e3nn_convolution(network: torch.nn.Module) -> None:
    """Replace every NequIP convolution by e3nn's ``TensorProduct`` with the same weights."""
    from e3nn import o3

    from physicsml_like.models.nequip import EdgeConvolution

    for conv in [m for m in network.modules() if isinstance(m, EdgeConvolution)]:
        instructions = [(p.i1, p.i2, k, "uvu", True) for k, p in enumerate(conv.paths.paths)]
        irreps_mid = o3.Irreps([(conv.channels, p.ir_out) for p in conv.paths.paths])
        tp = o3.TensorProduct(conv.irreps_in, conv.irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False)

        def forward(x, edge_sh, edge_radial, envelope, edge_index, conv=conv, tp=tp):  # type: ignore[no-untyped-def]
            weights = conv.path_weights(edge_radial, envelope).reshape(len(edge_sh), -1)
            per_edge = tp(x.index_select(0, edge_index[1]), edge_sh, weights)
            return torch.zeros(x.shape[0], per_edge.shape[1], dtype=x.dtype).index_add_(0, edge_index[0], per_edge)

        conv.forward = forward  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=["nequip", "allegro"], default="nequip")
    parser.add_argument("--config", default="{}", help="JSON of hyperparameters (default: the family's defaults)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--e3nn-convolution", action="store_true", help="NequIP with e3nn's TensorProduct instead")
    parser.add_argument("--keep-freed-memory", action="store_true", help="rerun with glibc keeping freed memory")
    args = parser.parse_args()
    if args.keep_freed_memory and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        big = str(2**34)
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": big, "MALLOC_TRIM_THRESHOLD_": big}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.set_num_threads(args.threads)

    from physicsml_like import keys as K
    from physicsml_like.models import AllegroModel, NequIPModel

    family = {"nequip": NequIPModel, "allegro": AllegroModel}[args.family]
    frames = copper_cells(args.batch_size)
    model = family(
        datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 5.0,
                    "train": {"batch_size": args.batch_size}},
        compute_forces=True,
        **json.loads(args.config),
    ).initialise(frames)
    module = model.module
    assert module is not None
    if args.e3nn_convolution:
        use_e3nn_convolution(module.network)
    datamodule = model._datamodule(model.config, train_data=frames)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    optimizer = torch.optim.Adam(module.network.parameters(), lr=1e-3)

    def step() -> None:
        values, offsets = module.compute(batch, module.network, create_graph=True)
        n_atoms = torch.bincount(batch[K.BATCH]).to(values["energy"].dtype)
        energy_label = (batch[K.Y_GRAPH_SCALARS][:, 0] - offsets["energy"]).to(values["energy"].dtype)
        force_error = values["forces"] - batch[K.Y_NODE_VECTOR].to(values["forces"].dtype)
        loss = ((values["energy"] - energy_label) / n_atoms).pow(2).mean() + force_error.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    wall, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    params = sum(p.numel() for p in module.network.parameters())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"{args.family}{' (e3nn TensorProduct)' if args.e3nn_convolution else ''}: {batch.num_nodes} atoms, "
        f"{batch.edge_index.shape[1]} edges, {params} parameters, {args.threads} thread(s): "
        f"{1 / np.median(wall):.3f} steps/s wall, {np.median(cpu):.2f} CPU s/step, peak RSS {peak:.2f} GiB"
    )


if __name__ == "__main__":
    main()
