"""Build the mace-torch fixtures of ``test_mace_torch.py`` (run in mace-torch's environment).

    benchmarks/_work/venv-mace/bin/python tests/pretrained/make_mace_torch_fixtures.py

(``benchmarks/reference_comparison.py --install-only`` creates that environment.) Builds
mace-torch models with MACE-MP-0's structure, 89 elements, ``max_ell`` 3, correlation 3,
radial MLP ``[64, 64, 64]``, 8 Bessel functions, polynomial envelope ``p = 5``, ``r_max`` 6 Å, a
non-linear last readout (``16x0e``, SiLU), but fewer channels than MACE-MP-0 so the files stay
small. The weights are mace-torch's random draw, perturbed; E0s, scale, shift and the neighbour
normaliser are random too. Each model is saved as a ``.model`` file (a temporary one, not kept),
exported by ``physicsml_like/pretrained/mace_torch_export.py`` exactly as a user's file would be,
into ``tests/pretrained/mace_torch/<name>/``, and mace-torch's ``MACECalculator`` (float64)
gives the reference energies, forces and stress of a few structures, written with the
structures to ``tests/pretrained/mace_torch/reference.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
# e3nn 0.4.4 reads its constants with torch.load; mace-torch sets this on import anyway (this
# script runs only in mace-torch's environment)
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from e3nn import o3
from mace import modules
from mace.calculators import MACECalculator

HERE = Path(__file__).resolve().parent
OUT = HERE / "mace_torch"
EXPORT = HERE.parents[1] / "physicsml_like" / "pretrained" / "mace_torch_export.py"

MP_ELEMENTS = [*range(1, 84), *range(89, 95)]
"""MACE-MP-0's 89 elements: H to Bi, and Ac to Pu."""

COMMON: dict[str, Any] = {
    "r_max": 6.0, "num_bessel": 8, "num_polynomial_cutoff": 5, "max_ell": 3, "num_interactions": 2,
    "num_elements": len(MP_ELEMENTS), "atomic_numbers": MP_ELEMENTS, "correlation": 3,
    "MLP_irreps": o3.Irreps("16x0e"), "gate": torch.nn.functional.silu, "radial_MLP": [64, 64, 64],
    "interaction_cls": modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
}
MODELS: dict[str, dict[str, Any]] = {
    # MACE-MP-0 "small" (128x0e): scalar hidden features
    "small": {"class": "ScaleShiftMACE", "hidden_irreps": "16x0e", "first": "RealAgnosticResidualInteractionBlock"},
    # MACE-MP-0 "medium" (128x0e + 128x1o): max_L 1
    "medium": {"class": "ScaleShiftMACE", "hidden_irreps": "8x0e + 8x1o", "first": "RealAgnosticInteractionBlock",
               "gain": 40.0},
    # mace-torch's plain MACE (no scale and shift), residual first layer
    "plain": {"class": "MACE", "hidden_irreps": "8x0e + 8x1o", "first": "RealAgnosticResidualInteractionBlock"},
}


READOUT_GAIN = 6.0
"""Random weights give interaction energies of meV; the readouts are scaled up so that forces
and stress are far above the tolerances of the comparison."""


def build(name: str, seed: int) -> torch.nn.Module:
    spec = MODELS[name]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    kwargs = {
        **COMMON,
        "hidden_irreps": o3.Irreps(spec["hidden_irreps"]),
        "interaction_cls_first": modules.interaction_classes[spec["first"]],
        "atomic_energies": rng.uniform(-8.0, -0.5, len(MP_ELEMENTS)),
        "avg_num_neighbors": float(rng.uniform(4.0, 8.0)),
    }
    if spec["class"] == "ScaleShiftMACE":
        model = modules.ScaleShiftMACE(**kwargs, atomic_inter_scale=float(rng.uniform(2.0, 4.0)),
                                       atomic_inter_shift=float(rng.uniform(-0.5, 0.5)))
    else:
        model = modules.MACE(**kwargs)
    with torch.no_grad():  # off mace-torch's initial draw, so no tensor has a special structure
        for parameter in model.parameters():
            if parameter.numel():
                parameter.mul_(1.0 + 0.3 * torch.randn_like(parameter)).add_(0.05 * torch.randn_like(parameter))
        for parameter in model.readouts.parameters():  # forces of eV/Å, not meV/Å
            parameter.mul_(spec.get("gain", READOUT_GAIN))
    return model


def structures() -> dict[str, Atoms]:
    rng = np.random.default_rng(7)
    metal = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    alloy = bulk("Ni", "fcc", a=3.6, cubic=True) * (2, 2, 1)
    alloy.symbols[[1, 4, 6, 11]] = "Al"
    alloy.symbols[[9]] = "Pu"
    alloy.set_cell(alloy.cell.array @ np.array([[1.0, 0.03, 0.0], [0.0, 1.0, -0.02], [0.01, 0.0, 1.04]]), scale_atoms=True)
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=6.0)
    slab.append("O")
    slab.positions[-1] = slab.positions[-2] + [0.0, 0.0, 1.9]
    ethanol = molecule("CH3CH2OH")
    small = bulk("Si", "diamond", a=5.43)  # 2 atoms, cell edges 3.8 Å: far under twice the cutoff
    small.set_cell(small.cell.array @ np.array([[1.02, 0.01, 0.0], [0.0, 0.99, 0.03], [0.0, 0.0, 1.0]]), scale_atoms=True)
    frames = {"bulk_metal": metal, "alloy": alloy, "slab": slab, "molecule": ethanol, "small_cell": small}
    for atoms in frames.values():
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    return frames


def _export_module() -> Any:
    spec = importlib.util.spec_from_file_location("mace_torch_export", EXPORT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    exporter = _export_module()
    frames = structures()
    reference: dict[str, Any] = {"structures": {}, "results": {}}
    for key, atoms in frames.items():
        reference["structures"][key] = {
            "numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
            "cell": atoms.cell.array.tolist(), "pbc": [bool(p) for p in atoms.pbc],
        }
    with tempfile.TemporaryDirectory() as tmp:
        for seed, name in enumerate(MODELS):
            model = build(name, seed)
            model_file = Path(tmp) / f"{name}.model"
            torch.save(model, model_file)
            if exporter.main([str(model_file), str(OUT / name)]) != 0:
                raise SystemExit(f"exporting {name} failed")
            calculator = MACECalculator(model_paths=str(model_file), device="cpu", default_dtype="float64")
            results = {}
            for key, atoms in frames.items():
                atoms = atoms.copy()
                atoms.calc = calculator
                entry = {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().tolist()}
                if atoms.pbc.all():
                    entry["stress"] = atoms.get_stress(voigt=False).tolist()
                results[key] = entry
            reference["results"][name] = results
            print(name, {k: round(v["energy"], 4) for k, v in results.items()}, flush=True)
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1))
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(HERE)}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    sys.exit(main())
