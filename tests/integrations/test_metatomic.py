"""``model.export(path, format="metatomic")`` through metatomic's own ASE calculator equals
``predict`` (energy, forces, stress) on molecules, bulk cells, slabs and small cells, and loads
where this package cannot be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.stress import full_3x3_to_voigt_6_stress

from physicsml_like.integrations.metatomic import _metatomic
from physicsml_like.variants.ensemble import EnsembleModel

from .common import FAMILIES, KINDS, perturbed, predicted, saved, structure

pytestmark = [pytest.mark.filterwarnings("ignore:.*is now called:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_metatomic_equals_predict(family: str, tmp_path: Path) -> None:
    _metatomic()
    from metatomic_ase import MetatomicCalculator

    model = saved(FAMILIES[family])
    calc = MetatomicCalculator(str(model.export(tmp_path / f"{family}.pt", format="metatomic")))
    for kind in KINDS:
        atoms = structure(model, kind)
        want = predicted(model, [atoms])[0]
        atoms.calc = calc
        assert np.abs(want["forces"]).max() > 2e-4
        assert abs(atoms.get_potential_energy() - float(want["energy"])) < 1e-6, kind
        np.testing.assert_allclose(atoms.get_forces(), want["forces"], atol=1e-6, err_msg=kind)
        if "stress" in want and atoms.pbc.all():
            np.testing.assert_allclose(atoms.get_stress(), full_3x3_to_voigt_6_stress(want["stress"]), atol=1e-6, err_msg=kind)


def test_metatomic_ensemble_gives_the_mean_and_its_uncertainty(tmp_path: Path) -> None:
    _metatomic()
    from metatomic_ase import MetatomicCalculator

    ensemble = EnsembleModel(members=[saved("painn_periodic"), perturbed(saved("painn_periodic"), seed=5)])
    path = ensemble.export(tmp_path / "ensemble.pt", format="metatomic")
    atoms = structure(ensemble.members[0], "bulk")
    want = ensemble.predict([atoms])
    atoms.calc = MetatomicCalculator(str(path))
    assert float(want["energy_std"][0]) > 1e-4  # the members differ
    assert abs(atoms.get_potential_energy() - float(want["energy"][0])) < 1e-6
    np.testing.assert_allclose(atoms.get_forces(), want["forces"][0], atol=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), full_3x3_to_voigt_6_stress(want["stress"][0]), atol=1e-6)
    import metatomic.torch as mta

    outputs = mta.load_atomistic_model(str(path)).capabilities().outputs
    assert "energy_uncertainty" in outputs


def test_metatomic_model_loads_without_the_package(tmp_path: Path) -> None:
    path = saved("painn_periodic").export(tmp_path / "painn.pt", format="metatomic")
    script = f"""
import sys
sys.modules["physicsml_like"] = None
import metatomic.torch as mta
model = mta.load_atomistic_model({str(path)!r})
print(model.capabilities().interaction_range, model.capabilities().atomic_types)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "4.0"
