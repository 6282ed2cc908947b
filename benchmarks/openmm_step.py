"""Milliseconds per MD step: OpenMM (the model as a PythonForce) against ASE's calculator.

    python benchmarks/openmm_step.py                 # writes benchmarks/results/openmm_step.md
    python benchmarks/openmm_step.py --rounds 3 --steps 20

The same model and structure in both engines, velocity Verlet, 0.5 fs:

- copper: the saved tiny MACE of copper (tests/compat/saved/mace_periodic, cutoff 4 Å) on a
  108-atom fcc cell (3x3x3 conventional cells, rattled);
- ethanol: the saved tiny PaiNN (tests/compat/saved/painn_molecule, cutoff 4 Å), 9 atoms.

Both engines call the same :class:`~physicsml_like.integrations.potential.Potential`, so the
difference is each engine's own cost per step (OpenMM: a State and the PythonForce call; ASE:
its calculator bookkeeping). Rounds interleave the two engines, so that other work on the
machine slows both alike; the table gives the median and the best round.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "openmm_step.md"
SAVED = ROOT / "tests" / "compat" / "saved"
THREADS = 2


def _systems(folder: Path) -> list[tuple[str, Path, object]]:
    from ase.build import bulk

    from physicsml_like import load_model
    from physicsml_like.datasets import load_dataset

    copper = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)
    copper.rattle(0.05, seed=0)
    out = []
    for name, saved, atoms in (("copper, 108 atoms, periodic", "mace_periodic", copper),
                               ("ethanol, 9 atoms", "painn_molecule", load_dataset("ethanol")[0])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            path = load_model(SAVED / saved).save(folder / saved)  # today's field names
        out.append((name, path, atoms))
    return out


def _openmm_runner(path: Path, atoms):
    import openmm
    import openmm.app as app
    from openmm import unit
    from openmmml import MLPotential

    from physicsml_like.integrations.openmm import openmm_topology

    topology, positions = openmm_topology(atoms)
    system = MLPotential("physicsml_like", model_path=path, precision="64").createSystem(topology)
    platform_ = openmm.Platform.getPlatformByName("CPU")
    simulation = app.Simulation(topology, system, openmm.VerletIntegrator(0.5 * unit.femtosecond), platform_,
                                {"Threads": str(THREADS)})
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    return simulation.step


def _ase_runner(path: Path, atoms):
    from ase import units
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    from physicsml_like import load_model

    atoms = atoms.copy()
    atoms.calc = load_model(path).to_ase_calculator(dtype="float64")
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(1))
    return VelocityVerlet(atoms, 0.5 * units.fs).run


def measure(rounds: int, steps: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, path, atoms in _systems(Path(folder)):
            runners = {"OpenMM (PythonForce)": _openmm_runner(path, atoms), "ASE calculator": _ase_runner(path, atoms)}
            for run in runners.values():
                run(5)  # warm up: first neighbour lists, allocator
            times: dict[str, list[float]] = {engine: [] for engine in runners}
            for _ in range(rounds):
                for engine, run in runners.items():
                    start = time.perf_counter()
                    run(steps)
                    times[engine].append((time.perf_counter() - start) / steps * 1e3)
                print(f"{name}: " + ", ".join(f"{e} {v[-1]:.1f} ms" for e, v in times.items()), flush=True)
            for engine, values in times.items():
                rows.append({"system": name, "engine": engine, "median": statistics.median(values), "best": min(values)})
    return rows


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.CalledProcessError):
        return platform.processor() or "unknown"


def write(rows: list[dict], rounds: int, steps: int) -> str:
    import openmm

    lines = [
        "# OpenMM step time against the ASE calculator",
        "",
        f"Machine: {platform.node() or 'vm'} | {platform.machine()} | CPU: {_cpu()} | Python {platform.python_version()} | "
        f"torch {torch.__version__} | OpenMM {openmm.__version__} | {THREADS} threads (torch and OpenMM's CPU platform)  ",
        f"Date: {time.strftime('%Y-%m-%d')}  ",
        f"Command: `python benchmarks/openmm_step.py --rounds {rounds} --steps {steps}`  ",
        "Other work may have run on the machine at the same time: the engines alternate round by round.",
        "",
        f"Velocity Verlet, 0.5 fs, float64; {rounds} rounds of {steps} steps each per engine.",
        "",
        "| system | engine | ms/step (median) | ms/step (best round) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['system']} | {row['engine']} | {row['median']:.2f} | {row['best']:.2f} |")
    by = {(r["system"], r["engine"]): r["median"] for r in rows}
    lines.append("")
    for system in dict.fromkeys(r["system"] for r in rows):
        ratio = by[(system, "OpenMM (PythonForce)")] / by[(system, "ASE calculator")]
        lines.append(f"- {system}: OpenMM / ASE = {ratio:.2f}")
    lines += [
        "",
        f"Load average when the run ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Both engines call the",
        "same `Potential`, so they differ only by each engine's own cost per step; on a shared machine",
        "the spread between rounds (median against best) can exceed that difference, and the best",
        "rounds are the better estimate of the engines' own cost.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    text = write(measure(args.rounds, args.steps), args.rounds, args.steps)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
