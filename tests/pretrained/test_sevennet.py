"""SevenNet checkpoints converted into our NequIP equal SevenNet's own calculator.

Both sides run in float32 (SevenNet's calculator casts its inputs to float32). Tolerances:
1e-5 eV/atom (energy), 1e-4 eV/Å (forces), 1e-5 eV/Å³ (stress).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111

from physicsml_like.errors import ConversionError
from physicsml_like.pretrained import available_pretrained, load_pretrained
from physicsml_like.pretrained.sevennet import read_sevennet_checkpoint, shipped_sevennet_path

pytest.importorskip("sevenn")

E_TOL, F_TOL, S_TOL = 1e-5, 1e-4, 1e-5


def _sevenn_calculator(name: str):
    """SevenNet's calculator, checked not to change torch's defaults or the weights-only env."""
    dtype, env = torch.get_default_dtype(), os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(str(shipped_sevennet_path(name)), device="cpu")
    assert torch.get_default_dtype() == dtype
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") == env
    return calc


@functools.cache
def _structures() -> dict[str, Atoms]:
    import ase.io

    from physicsml_like.datasets import dataset_path

    metal = bulk("Cu", "fcc", a=3.61).repeat((3, 3, 3))  # 27 atoms
    metal.rattle(0.05, seed=1)
    alloy = bulk("NiAl", "cesiumchloride", a=2.88).repeat((2, 2, 2))  # 16 atoms
    alloy.rattle(0.05, seed=2)
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)  # periodic in x, y only
    slab.pbc = (True, True, False)
    slab.rattle(0.05, seed=3)
    small = bulk("Cu", "fcc", a=3.6, cubic=True)  # 3.6 Å edge: below the 5 Å cutoff, many images
    small.rattle(0.05, seed=4)
    molecule = ase.io.read(dataset_path("ethanol"), index=0)  # the first frame of load_dataset("ethanol")
    molecule.calc = None
    molecule.pbc = False
    return {"bulk metal": metal, "alloy": alloy, "slab": slab, "small cell": small, "molecule": molecule}


def _results(atoms: Atoms, calc) -> tuple[float, np.ndarray, np.ndarray | None]:
    atoms = atoms.copy()
    atoms.calc = calc
    stress = atoms.get_stress() if atoms.pbc.all() else None
    return float(atoms.get_potential_energy()), atoms.get_forces(), stress


def _differences(ours, theirs, n_atoms: int) -> tuple[float, float, float]:
    de = abs(ours[0] - theirs[0]) / n_atoms
    df = float(np.abs(ours[1] - theirs[1]).max())
    ds = float(np.abs(ours[2] - theirs[2]).max()) if theirs[2] is not None else 0.0
    return de, df, ds


@pytest.fixture(scope="module")
def sevennet0():
    model = load_pretrained("sevennet-0")
    return model, _sevenn_calculator("sevennet-0"), model.to_ase_calculator()


@pytest.fixture(scope="module")
def reference(sevennet0):
    _, calc, _ = sevennet0
    return {kind: _results(atoms, calc) for kind, atoms in _structures().items()}


@pytest.mark.parametrize("kind", ["bulk metal", "alloy", "slab", "small cell", "molecule"])
def test_sevennet0_equals_sevenn(sevennet0, reference, kind):
    _, _, calc = sevennet0
    atoms = _structures()[kind].copy()
    theirs = reference[kind]
    ours = _results(atoms, calc)
    assert np.abs(theirs[1]).max() > 0.05  # forces are not trivially zero
    if theirs[2] is not None:
        assert np.abs(theirs[2]).max() > 1e-4
    de, df, ds = _differences(ours, theirs, len(atoms))
    assert de < E_TOL and df < F_TOL and ds < S_TOL, (kind, de, df, ds)


@pytest.mark.parametrize("name", ["sevennet-0-22may2024", "sevennet-l3i5"])
def test_other_releases_equal_sevenn(name):
    """The May 2024 SevenNet-0 (raw-vector harmonics, old module names) and l3i5 (lmax 3,
    polynomial envelope) on the alloy."""
    atoms = _structures()["alloy"]
    ours = _results(atoms, load_pretrained(name).to_ase_calculator())
    theirs = _results(atoms, _sevenn_calculator(name))
    de, df, ds = _differences(ours, theirs, len(atoms))
    assert de < E_TOL and df < F_TOL and ds < S_TOL, (name, de, df, ds)


def test_mis_converted_weight_is_caught(sevennet0, reference):
    """Mutation: one weight block transposed makes the comparison fail."""
    model, _, _ = sevennet0
    weight = model.module.network.blocks[1].linear_1.weight
    original = weight.detach().clone()
    try:
        with torch.no_grad():
            block = weight[: 128 * 128].view(128, 128)
            block.copy_(block.t().clone())
        atoms = _structures()["alloy"]
        de, df, _ = _differences(_results(atoms, model.to_ase_calculator()), reference["alloy"], len(atoms))
        assert de > E_TOL or df > F_TOL
    finally:
        with torch.no_grad():
            weight.copy_(original)


def test_predict_save_load_and_fine_tune(sevennet0, reference, tmp_path):
    from ase.calculators.emt import EMT

    from physicsml_like import load_model

    model, _, _ = sevennet0
    atoms = _structures()["small cell"]
    energy = model.predict([atoms])["energy"][0]
    assert abs(energy - reference["small cell"][0]) / len(atoms) < E_TOL
    model.save(tmp_path / "sevennet0")
    again = load_model(tmp_path / "sevennet0")
    assert abs(again.predict([atoms])["energy"][0] - energy) < 1e-6
    frames = []
    for seed in range(2):
        frame = bulk("Cu", "fcc", a=3.6, cubic=True)
        frame.rattle(0.05, seed=seed)
        frame.calc = EMT()
        frame.get_potential_energy()
        frames.append(frame)
    before = again.module.network.energy_head[1].weight.detach().clone()
    again.train(frames, frames, trainer_config={"max_epochs": 1, "default_root_dir": str(tmp_path / "runs")},
                datamodule_config={"train": {"batch_size": 2}})
    assert not torch.equal(before, again.module.network.energy_head[1].weight.detach())


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConversionError) as error:
        load_pretrained("sevennet-42")
    for name in available_pretrained():
        assert name in str(error.value)


def test_not_a_sevennet_file(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ConversionError, match="not a SevenNet checkpoint"):
        load_pretrained(path)


def test_unsupported_option_is_named(tmp_path):
    raw = read_sevennet_checkpoint(shipped_sevennet_path("sevennet-0"))
    raw["config"]["use_bias_in_linear"] = True
    path = tmp_path / "biased.pth"
    torch.save({"config": raw["config"], "model_state_dict": raw["state"]}, path)
    with pytest.raises(ConversionError) as error:
        load_pretrained(path)
    assert error.value.option == "use_bias_in_linear"


def test_multi_fidelity_sevennet_is_refused_with_the_reason():
    with pytest.raises(ConversionError) as error:
        load_pretrained("sevennet-mf-0", modal="PBE")
    assert error.value.option == "use_modal_self_inter_intro"
    assert "per-fidelity bias" in str(error.value)


class _Payload:
    """Unpickling this would create ``marker``: proof that pickled code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"config": {"version": "0.9.1"}, "model_state_dict": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(ConversionError, match="pickled code"):
        load_pretrained(path)
    assert not marker.exists()
