"""GPU throughput: MACE and NequIP training and MD step time in float32 on CUDA, beside mace-torch
on the same GPU.

    python benchmarks/gpu.py                 # writes benchmarks/results/gpu.md
    python benchmarks/gpu.py --epochs 1 --steps 10 --out /tmp/gpu.md

Needs a CUDA build of torch and a GPU; without one it says so and exits with status 2, writing
nothing. What it measures, all in float32 on ``cuda:0``:

- training throughput (structures/s, the best of ``--epochs`` epochs after one warm-up epoch) of
  the reference comparison's MACE and NequIP (``reference_comparison.ARCHITECTURES``) on 200
  rattled 108-atom copper cells with EMT labels, batch size 8, energy and forces;
- MD step time (velocity Verlet, 1 fs, 108 atoms) of the ASE calculator and of the exported
  TorchScript model on the GPU;
- mace-torch's ``MACECalculator`` on the same weights and GPU, through
  ``benchmarks/reference/md_mace_torch.py``, when mace-torch's environment
  (``reference_comparison.install("mace-torch")``) has a CUDA torch; otherwise its row says why
  it is missing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

RESULTS = BENCHMARKS / "results" / "gpu.md"


def require_cuda() -> str:
    """The GPU's name, or exit 2 with the reason there is none."""
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no visible device"
        print(f"benchmarks/gpu.py needs a CUDA GPU: torch {torch.__version__} is {build}. "
              "Nothing was measured or written.", file=sys.stderr)
        raise SystemExit(2)
    return torch.cuda.get_device_name(0)


def training_rate(family: str, frames: list[Any], epochs: int) -> float:
    """Structures per second of the best epoch (after a warm-up epoch), float32 on cuda."""
    from reference_comparison import ARCHITECTURES

    from physicsml_like import load_from_dict

    times: list[float] = []

    import lightning as L

    class EpochTimer(L.Callback):
        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory() as folder:
        model = load_from_dict({"name": f"{family}_model", "config": {
            "datamodule": {"y_graph_scalars": ["energy"], "y_node_vector": "forces", "cut_off": 5.0,
                           "pre_batch": "in_memory", "train": {"batch_size": 8}},
            "compute_forces": True, "model_dtype": "float32", **ARCHITECTURES[family],
            "trainer": {"max_epochs": epochs + 1, "accelerator": "gpu", "devices": 1, "default_root_dir": folder,
                        "enable_progress_bar": False, "logger": False, "enable_checkpointing": False,
                        "callbacks": [EpochTimer()]},
        }})
        model.train(frames)
    return len(frames) / min(times[1:])


def md_ms(calculator: Any, atoms: Any, steps: int) -> float:
    from md_step import verlet_ms

    return verlet_ms(atoms, calculator, steps, warmup=3)


def mace_torch_row(work: Path, architecture: dict[str, Any], steps: int) -> tuple[str, float | None]:
    from reference_comparison import REFERENCE_CODES

    python = REFERENCE_CODES["mace-torch"].python
    if not python.exists():
        return "mace-torch's environment is not installed (reference_comparison.install('mace-torch'))", None
    probe = subprocess.run([str(python), "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "True":
        return "mace-torch's environment has no CUDA torch", None
    from md_step import MaceTorch

    worker = MaceTorch(work, python, {**architecture, "device": "cuda"})
    answer = worker.run("float32", steps, 3)
    worker.close()
    return "", float(answer["ms_per_step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    gpu = require_cuda()

    from md_step import CUTOFF, ExportedCalculator, start_structure
    from reference_comparison import ARCHITECTURES, REFERENCE_CODES, copper_frames

    from physicsml_like import from_mace_torch
    from physicsml_like.data.neighbours import neighbour_list

    frames = copper_frames(200, seed=0)
    rates = {family: training_rate(family, frames, args.epochs) for family in ("mace", "nequip")}
    atoms = start_structure()
    i, _, _ = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, CUTOFF)
    architecture = {**ARCHITECTURES["mace"], "cutoff": CUTOFF, "avg_num_neighbours": len(i) / len(atoms)}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        atoms.write(work / "start.extxyz")
        why, mace_ms = mace_torch_row(work, architecture, args.steps)
        if (work / "mace.model").exists():
            model = from_mace_torch(work / "mace.model", python=str(REFERENCE_CODES["mace-torch"].python))
            rows.append(("ASE calculator", md_ms(model.to_ase_calculator(device="cuda", dtype="float32"), atoms, args.steps)))
            exported = model.export(work / "model.pt", dtype="float32", device="cuda")
            rows.append(("exported (TorchScript)", md_ms(ExportedCalculator(exported, torch.float32), atoms, args.steps)))
    lines = [
        "# GPU: training throughput and MD step time, float32", "",
        f"GPU: {gpu}; torch {torch.__version__} (CUDA {torch.version.cuda})  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}  ",
        f"Command: `python benchmarks/gpu.py --epochs {args.epochs} --steps {args.steps}`", "",
        "| family | train (structures/s), 108-atom Cu, batch 8 |", "|---|---|",
        *[f"| {family} | {rate:.1f} |" for family, rate in rates.items()], "",
        "| MD engine (MACE, 108-atom Cu) | ms per step |", "|---|---|",
        *[f"| {name} | {ms:.2f} |" for name, ms in rows],
        f"| mace-torch MACECalculator | {f'{mace_ms:.2f}' if mace_ms is not None else 'not run: ' + why} |", "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(json.dumps({"train": rates, "md": dict(rows), "mace_torch_ms": mace_ms}))


if __name__ == "__main__":
    main()
