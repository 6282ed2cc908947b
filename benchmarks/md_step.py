"""Molecular-dynamics step time on the 108-atom copper cell: every way this package runs a model,
against mace-torch's ``MACECalculator`` on the same weights, in one interleaved run.

    python benchmarks/md_step.py                      # writes benchmarks/results/md_step.md
    python benchmarks/md_step.py --rounds 2 --steps 5 --out /tmp/md.md   # a quick look

The network is the MACE of the reference comparison (``reference_comparison.ARCHITECTURES
["mace"]``, cutoff 5 Å). mace-torch builds it from a fixed seed in its own environment
(``benchmarks/reference/md_mace_torch.py``, made by ``reference_comparison.install``), and the
file is converted into this package's MACE with :func:`physicsml_like.from_mace_torch`, so both
codes run the same weights; the start energies are compared as a check. Engines of this package:

- ``ASE calculator``: ``model.to_ase_calculator(dtype=...)``;
- ``exported (TorchScript)``: ``model.export(path, dtype=...)`` loaded with ``torch.jit.load``
  and driven by ASE through a ten-line calculator, the neighbour list built inside the file;
- ``exported (AOTInductor)``: ``model.export(path, format="aoti", dtype=...)`` loaded with
  ``torch._inductor.aoti_load_package`` and driven by ASE through :class:`AOTICalculator`, the
  neighbour list built each step by vesin (the calculator of ``docs/export.md``);
- ``torch-sim``: ``model.to_torch_sim()`` under ``torch_sim.integrate`` (NVE), one system.

Each round runs every engine once, in a rotated order: warm-up steps, then timed velocity-Verlet
steps of 1 fs from 300 K; a round's figure is its median step. The table gives the median and
the best round per engine, 2 threads everywhere, and the ratio to mace-torch in the same dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import torch  # noqa: E402

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS / "reference"))

from _common import verlet_ms  # noqa: E402
from reference_comparison import ARCHITECTURES, REFERENCE_CODES, install  # noqa: E402

RESULTS = BENCHMARKS / "results" / "md_step.md"
CUTOFF = 5.0


def cpu_model() -> str:
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def start_structure() -> Any:
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
    atoms.rattle(stdev=0.05, seed=1)
    return atoms


class ExportedCalculator:
    """ASE's calculator interface over an exported TorchScript file (what a user writes to run the
    file without this package)."""

    def __new__(cls, path: Path, dtype: torch.dtype) -> Any:
        from ase.calculators.calculator import Calculator, all_changes

        module = torch.jit.load(str(path))

        class _Exported(Calculator):
            implemented_properties = ["energy", "forces", "stress"]

            def calculate(self, atoms: Any = None, properties: Any = None, system_changes: Any = all_changes) -> None:
                super().calculate(atoms, properties, system_changes)
                out = module(torch.tensor(self.atoms.positions, dtype=dtype), torch.tensor(self.atoms.numbers),
                             torch.tensor(self.atoms.cell.array, dtype=dtype), torch.tensor(self.atoms.pbc))
                self.results = {"energy": float(out["energy"]), "forces": out["forces"].detach().double().numpy()}

        return _Exported()


class AOTICalculator:
    """ASE's calculator interface over an AOTInductor package, with vesin's neighbour list (what
    a user writes to run the package without this package; the same as in ``docs/export.md``)."""

    def __new__(cls, path: Path, dtype: torch.dtype) -> Any:
        from ase.calculators.calculator import Calculator, all_changes
        from vesin import NeighborList

        runner = torch._inductor.aoti_load_package(str(path))
        cutoff = float(runner.get_metadata()["cutoff"])
        searcher = NeighborList(cutoff=cutoff, full_list=True)

        class _Compiled(Calculator):
            implemented_properties = ["energy", "forces", "stress"]

            def calculate(self, atoms: Any = None, properties: Any = None, system_changes: Any = all_changes) -> None:
                super().calculate(atoms, properties, system_changes)
                a = self.atoms
                i, j, shifts = searcher.compute(a.positions, a.cell.array, a.pbc, quantities="ijS")
                order = np.argsort(i, kind="stable")  # edges of one atom together: the sums stay local
                edges = torch.from_numpy(np.stack([i[order], j[order]]).astype(np.int64))
                out = runner(torch.tensor(a.positions, dtype=dtype), torch.from_numpy(a.numbers.astype(np.int64)),
                             torch.tensor(a.cell.array, dtype=dtype), torch.from_numpy(a.pbc.copy()), edges,
                             torch.from_numpy(shifts[order].astype(np.int64)))
                self.results = {"energy": float(out["energy"]), "forces": out["forces"].double().numpy()}

        return _Compiled()


def torch_sim_ms(model: Any, atoms: Any, dtype: str, steps: int, warmup: int) -> float:
    """Milliseconds per NVE step of torch-sim's own integrator, one system."""
    import torch_sim as ts

    ts_model = model.to_torch_sim(dtype=dtype)
    state = ts.io.atoms_to_state([atoms], ts_model.device, ts_model.dtype)
    state = ts.integrate(system=state, model=ts_model, integrator=ts.integrators.nve, n_steps=max(warmup, 1),
                         temperature=300.0, timestep=0.001)
    t0 = time.perf_counter()
    ts.integrate(system=state, model=ts_model, integrator=ts.integrators.nve, n_steps=steps, temperature=300.0,
                 timestep=0.001)
    return 1000 * (time.perf_counter() - t0) / steps


class MaceTorch:
    """The mace-torch worker process (``reference/md_mace_torch.py``), kept up for all rounds."""

    def __init__(self, workdir: Path, python: Path, architecture: dict[str, Any]) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
        self.process = subprocess.Popen(
            [str(python), str(BENCHMARKS / "reference" / "md_mace_torch.py"), str(workdir), json.dumps(architecture)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"mace-torch worker did not start: {ready}")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:  # mace-torch prints notices of its own on stdout: answers are the JSON lines
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"mace-torch worker ended (exit code {self.process.poll()})")
            if line.startswith("{"):
                return json.loads(line)

    def run(self, dtype: str, steps: int, warmup: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"dtype": dtype, "steps": steps, "warmup": warmup}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)

    from physicsml_like import from_mace_torch
    from physicsml_like.data.neighbours import neighbour_list

    install("mace-torch")
    python = REFERENCE_CODES["mace-torch"].python
    atoms = start_structure()
    i, _, _ = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, CUTOFF)
    architecture = {**ARCHITECTURES["mace"], "cutoff": CUTOFF, "avg_num_neighbours": len(i) / len(atoms)}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        atoms.write(work / "start.extxyz")
        mace = MaceTorch(work, python, architecture)
        model = from_mace_torch(work / "mace.model", python=str(python))
        exported = {dtype: work / f"model-{dtype}.pt" for dtype in args.dtypes}
        for dtype, path in exported.items():
            model.export(path, dtype=dtype)
        compiled = {dtype: work / f"model-{dtype}.pt2" for dtype in args.dtypes}
        for dtype, path in compiled.items():
            started = time.perf_counter()
            model.export(path, format="aoti", dtype=dtype)
            print(f"AOTInductor package ({dtype}) compiled in {time.perf_counter() - started:.0f} s", flush=True)

        def ase_engine(dtype: str) -> float:
            return verlet_ms(atoms, model.to_ase_calculator(dtype=dtype), args.steps, args.warmup)

        def exported_engine(dtype: str) -> float:
            calculator = ExportedCalculator(exported[dtype], getattr(torch, dtype))
            return verlet_ms(atoms, calculator, args.steps, args.warmup)

        def compiled_engine(dtype: str) -> float:
            return verlet_ms(atoms, AOTICalculator(compiled[dtype], getattr(torch, dtype)), args.steps, args.warmup)

        def torch_sim_engine(dtype: str) -> float:
            return torch_sim_ms(model, atoms, dtype, args.steps, args.warmup)

        engines: dict[str, Callable[[str], float]] = {"ASE calculator": ase_engine, "exported (TorchScript)": exported_engine,
                                                      "exported (AOTInductor)": compiled_engine}
        if hasattr(model, "to_torch_sim"):
            engines["torch-sim"] = torch_sim_engine
        names = [*engines, "mace-torch MACECalculator"]
        times: dict[tuple[str, str], list[float]] = {(n, d): [] for n in names for d in args.dtypes}
        check: dict[str, float] = {}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for dtype in args.dtypes:
                for name in order:
                    if name == "mace-torch MACECalculator":
                        answer = mace.run(dtype, args.steps, args.warmup)
                        times[(name, dtype)].append(answer["ms_per_step"])
                        check[dtype] = answer["start_energy"]
                    else:
                        times[(name, dtype)].append(engines[name](dtype))
                    print(f"round {r + 1} {dtype} {name}: {times[(name, dtype)][-1]:.1f} ms/step", flush=True)
        ours_energy = {dtype: float(model.predict([atoms])["energy"][0]) for dtype in args.dtypes[:1]}
        first = args.dtypes[0]
        start = atoms.copy()
        start.calc = AOTICalculator(compiled[first], getattr(torch, first))
        compiled_energy = float(start.get_potential_energy())
        mace.close()

    load = os.getloadavg()
    lines = [
        "# MD step time: 108-atom copper, this package's engines against mace-torch", "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, {THREADS} threads for every code; load average at the end "
        f"{load[0]:.1f} (other work ran on the machine: the codes take turns in every round).  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}  ",
        f"Command: `python benchmarks/md_step.py --rounds {args.rounds} --steps {args.steps}`  ",
        f"torch {torch.__version__}; MACE of the reference comparison ({architecture['hidden_irreps']}, max_ell "
        f"{architecture['max_ell']}, correlation {architecture['correlation']}, {architecture['num_interactions']} "
        f"interactions, cutoff {CUTOFF} Å), the same weights in both codes.", "",
        f"Same weights check: start energy {ours_energy[args.dtypes[0]]:.6f} eV here, "
        f"{check.get(args.dtypes[0], float('nan')):.6f} eV in mace-torch ({args.dtypes[0]}), "
        f"{compiled_energy:.6f} eV from the AOTInductor package.", "",
        "| engine | dtype | ms per step, median of rounds | best round | rounds | / mace-torch (median) |",
        "|---|---|---|---|---|---|",
    ]
    for dtype in args.dtypes:
        reference = float(np.median(times[("mace-torch MACECalculator", dtype)]))
        for name in names:
            values = times[(name, dtype)]
            median = float(np.median(values))
            lines.append(f"| {name} | {dtype} | {median:.1f} | {min(values):.1f} | "
                         f"{', '.join(f'{v:.0f}' for v in values)} | {median / reference:.2f}x |")
    lines += ["", "Goals: the exported model at most 0.5x mace-torch's step time, the ASE calculator at most 0.7x.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
