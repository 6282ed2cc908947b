"""The one inference path: raw arrays of one structure or many give exactly ``predict``'s values,
and a bad argument is named."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk

from physicsml_like import load_model
from physicsml_like.errors import DataError
from physicsml_like.integrations.potential import Potential
from tests.compat.make_saved_models import HERE as SAVED


@pytest.fixture(scope="module")
def periodic_model():
    """A saved MACE with stress and EMA, perturbed weights (a compatibility fixture: its config
    uses older field names, which still load)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_model(SAVED / "mace_periodic")


def _structures(cu_frames):
    """Bulk cells of two sizes, a slab (periodic in x and y only) and a molecule-like cluster."""
    small = bulk("Cu", "fcc", a=3.6, cubic=True)
    small.rattle(0.05, seed=1)
    slab = cu_frames[3].copy()
    slab.pbc = [True, True, False]
    cluster = cu_frames[4][:13].copy()
    cluster.pbc = False
    return [cu_frames[2], small, slab, cluster]


def test_batched_call_equals_predict_structure_by_structure(periodic_model, cu_frames):
    frames = _structures(cu_frames)
    expected = periodic_model.predict(frames)
    potential = Potential(periodic_model)
    positions = np.concatenate([f.positions for f in frames])
    numbers = np.concatenate([f.numbers for f in frames])
    system = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    got = potential(positions, numbers, np.stack([f.cell.array for f in frames]),
                    np.stack([f.pbc for f in frames]), system)
    np.testing.assert_allclose(got["energy"].numpy(), expected["energy"], rtol=0, atol=1e-9)
    forces = np.concatenate(expected["forces"])
    assert np.abs(forces).max() > 1e-3  # the compared forces are not trivially zero
    np.testing.assert_allclose(got["forces"].numpy(), forces, rtol=0, atol=1e-9)
    stress = got["stress"].numpy()
    np.testing.assert_allclose(stress, np.asarray(expected["stress"]).reshape(-1, 3, 3), rtol=0, atol=1e-9)
    assert np.abs(stress[:2]).max() > 1e-5 and np.all(stress[2:] == 0)  # only bulk cells have a stress


def test_one_structure_takes_plain_cell_and_pbc(periodic_model, cu_frames):
    frame = cu_frames[1]
    got = Potential(periodic_model)(frame.positions, frame.numbers, frame.cell.array, frame.pbc)
    assert got["energy"].shape == (1,)
    np.testing.assert_allclose(got["energy"].numpy(), periodic_model.predict([frame])["energy"], atol=1e-9)


def test_a_permuted_system_gives_different_energies(periodic_model, cu_frames):
    """Mutation check of the batched comparison: atoms given to the wrong structure change the
    energies, so the equality above is not met by any assignment."""
    frames = [cu_frames[2], cu_frames[5][:20]]
    positions = np.concatenate([f.positions for f in frames])
    numbers = np.concatenate([f.numbers for f in frames])
    cells = np.stack([f.cell.array for f in frames])
    pbcs = np.stack([f.pbc for f in frames])
    potential = Potential(periodic_model)
    right = potential(positions, numbers, cells, pbcs, np.repeat([0, 1], [len(f) for f in frames]))
    wrong = potential(positions, numbers, cells, pbcs, np.repeat([0, 1], [len(frames[0]) - 1, len(frames[1]) + 1]))
    assert np.abs(right["energy"].numpy() - wrong["energy"].numpy()).max() > 1e-3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"positions": np.zeros((4, 2))}, "positions"),
        ({"atomic_numbers": np.full(3, 29)}, "atomic_numbers"),
        ({"atomic_numbers": np.full(4, 8)}, "atomic_numbers"),
        ({"cell": np.zeros((2, 2))}, "cell"),
        ({"cell": np.zeros((3, 3))}, "cell"),
        ({"pbc": [True, True]}, "pbc"),
        ({"system": [0, 0, 1, 1]}, "system"),
    ],
)
def test_bad_arguments_are_named(periodic_model, change, field):
    arguments = {"positions": np.eye(4, 3) * 2.0, "atomic_numbers": np.full(4, 29), "cell": np.eye(3) * 5.0,
                 "pbc": [True, True, True], "system": None}
    arguments.update(change)
    with pytest.raises(DataError) as error:
        Potential(periodic_model)(**arguments)
    assert error.value.field == field
    assert field in str(error.value)
