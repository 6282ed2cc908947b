"""mace-torch's side of ``benchmarks/md_step.py`` (runs in mace-torch's own virtual environment).

    venv-mace/bin/python md_mace_torch.py WORKDIR ARCHITECTURE_JSON

Builds mace-torch's ``MACE`` with the architecture of the reference comparison (a plain first
interaction, residual later ones, one element) from a fixed seed and saves it as
``WORKDIR/mace.model``, which the benchmark converts into this package's MACE (same weights).
Then it serves timing requests, one JSON line on stdin each (``{"dtype": ..., "steps": ...,
"warmup": ...}``), answering one JSON line: milliseconds per velocity-Verlet step of
``MACECalculator`` on ``WORKDIR/start.extxyz``. A process that stays up lets the benchmark
interleave the codes round by round without counting start-up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # mace-torch's own files are pickles

import ase.io
import numpy as np
import torch
from e3nn import o3
from mace import modules
from mace.calculators import MACECalculator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import verlet_ms


def build(architecture: dict, cutoff: float, avg_num_neighbours: float) -> torch.nn.Module:
    torch.manual_seed(0)
    return modules.MACE(
        r_max=cutoff, num_bessel=architecture["num_bessel"], num_polynomial_cutoff=architecture["num_polynomial_cutoff"],
        max_ell=architecture["max_ell"], interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=architecture["num_interactions"], num_elements=1,
        hidden_irreps=o3.Irreps(architecture["hidden_irreps"]), MLP_irreps=o3.Irreps(architecture["mlp_irreps"]),
        atomic_energies=np.array([-3.5]), avg_num_neighbors=avg_num_neighbours, atomic_numbers=[29],
        correlation=architecture["correlation"], gate=torch.nn.functional.silu,
        radial_MLP=list(architecture["radial_mlp"]),
    )


def main() -> None:
    workdir, architecture = Path(sys.argv[1]), json.loads(sys.argv[2])
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    start = ase.io.read(workdir / "start.extxyz")
    torch.set_default_dtype(torch.float64)
    model = build(architecture, float(architecture["cutoff"]), float(architecture["avg_num_neighbours"]))
    torch.save(model, workdir / "mace.model")
    calculators: dict[str, MACECalculator] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        dtype = request["dtype"]
        if dtype not in calculators:
            calculators[dtype] = MACECalculator(model_paths=str(workdir / "mace.model"),
                                                device=architecture.get("device", "cpu"), default_dtype=dtype)
        probe = start.copy()
        probe.calc = calculators[dtype]
        answer = {"ms_per_step": verlet_ms(start, calculators[dtype], request["steps"], request["warmup"])}
        answer["start_energy"] = float(probe.get_potential_energy())
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
