"""ANI passes the family contract (learning with the ANI-1x preset included) and reproduces the
published AEVs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ase
import numpy as np
import pytest

from physicsml_like import ConfigError, DataError
from physicsml_like.models import ANIModel
from physicsml_like.models.ani import PRESETS

from .contract import (
    MOLECULE_TARGETS,
    AccuracyRun,
    FamilyContract,
    check_energy_continuous_at_cutoff,
    check_symmetries,
)

REFERENCE = Path(__file__).parent / "data" / "ani_reference_aevs.npz"


class TestANI(FamilyContract):
    """The molecule model takes the ANI-1x preset (its elements and 5.2 Å cutoff) and has no
    dipole head; the periodic one, for copper, has no preset and keeps the 4.0 Å cutoff. The
    learning check trains the published ANI-1x AEV and networks."""

    model_class = ANIModel
    arch = {"hidden_sizes": [32, 16]}
    molecule_extras = {"y_node_scalars": ["charges"]}
    periodic_fields = {"which_ani": None}
    learning_arch = {}
    learning_epochs = 4
    accuracy_runs = (
        AccuracyRun("cu_emt", {"which_ani": None, "hidden_sizes": [64, 32]}, epochs=6, lr=5e-3, train=100,
                    max_force_fraction=0.3, max_stress=0.015,
                    measured="seed 0, one thread, 4 s: forces 0.083 eV/Å (0.11 x zero-force), stress 0.003 eV/Å³"),
    )

    @classmethod
    def adapt(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Without ``which_ani=None`` the preset sets the cutoff, so the test config gives none."""
        if config.get("which_ani", "ani1") is not None:
            del config["datamodule"]["cut_off"]  # the preset's radial cutoff
        return config

    def test_partially_periodic_slab(self, periodic_model: ANIModel, cu_slab: list[ase.Atoms]) -> None:
        """A slab (periodic in x and y only): symmetries hold and a lattice shift changes nothing."""
        slab = cu_slab[0]
        check_symmetries(periodic_model, slab)
        shifted = slab.copy()
        shifted.positions[3] += slab.cell[0] - slab.cell[1]
        energies = periodic_model.predict([slab, shifted])["energy"]
        assert abs(energies[0] - energies[1]) < 1e-9

    def test_energy_is_continuous_at_the_cutoff(self, molecule_model: ANIModel) -> None:
        check_energy_continuous_at_cutoff(molecule_model)

    def test_every_layer_says_what_it_is(self, molecule_model: ANIModel) -> None:
        text = repr(molecule_model.module.network)
        assert "aev_length=384" in text and "trainable weights" in text
        assert "species=4, radial_cutoff=5.2, angular_cutoff=3.5" in text
        assert "384 -> 32 -> 16 -> 2" in text  # energy and charge columns


def _aev_of(model: ANIModel, atoms: ase.Atoms) -> np.ndarray:
    captured = []
    hook = model.module.network.aev.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        model.predict([atoms])
    finally:
        hook.remove()
    return captured[0].numpy()


@pytest.mark.parametrize("name", ["ethanol", "mixed", "box"])
def test_aevs_match_torchani(name: str, tmp_path: Path) -> None:
    """AEVs through our data pipeline equal torchani 2.9.0's (scripts/make_ani_reference.py);
    the tolerance covers torchani keeping its constants in float32."""
    reference = np.load(REFERENCE)
    cell = reference[f"{name}_cell"]
    atoms = ase.Atoms(numbers=reference[f"{name}_numbers"], positions=reference[f"{name}_positions"],
                      cell=cell, pbc=bool(np.abs(cell).sum()))
    atoms.info["energy"] = 0.0
    model = ANIModel(datamodule={"y_graph_scalars": ["energy"]}, which_ani=str(reference[f"{name}_preset"]),
                     model_dtype="float64", hidden_sizes=[4], trainer={"default_root_dir": str(tmp_path)})
    aev = _aev_of(model.initialise([atoms]), atoms)
    np.testing.assert_allclose(aev, reference[f"{name}_aev"], atol=2e-6, rtol=0)


@pytest.mark.parametrize(("preset", "length", "cutoff"), [("ani1", 384, 5.2), ("ani2", 1008, 5.1)])
def test_presets_have_the_published_aev_length(preset, length, cutoff, ethanol, tmp_path: Path) -> None:
    assert PRESETS[preset].aev_length() == length
    model = ANIModel(datamodule=MOLECULE_TARGETS, compute_forces=True, which_ani=preset,
                     trainer={"default_root_dir": str(tmp_path)}).initialise(ethanol[:4])
    network = model.module.network
    assert network.aev.length == length
    assert model.config.datamodule.cut_off == cutoff
    assert len(network.elements.networks) == len(PRESETS[preset].elements)
    # every element network has the published widths
    first_layers = [net[0].out_features for net in network.elements.networks]
    assert first_layers == [PRESETS[preset].hidden_sizes[e][0] for e in PRESETS[preset].elements]


def test_an_element_outside_the_preset_is_a_clear_error(ethanol, tmp_path: Path) -> None:
    thiol = ase.Atoms("CSH", positions=[[0, 0, 0], [1.8, 0, 0], [2.2, 1.2, 0]])
    thiol.info["energy"] = -1.0
    thiol.arrays["forces"] = np.zeros((3, 3))
    model = ANIModel(datamodule=MOLECULE_TARGETS, compute_forces=True, which_ani="ani1",
                     trainer={"default_root_dir": str(tmp_path)})
    with pytest.raises(DataError, match=r"element S \(Z=16\) is not in the element mapping \['H', 'C', 'N', 'O'\]"):
        model.initialise([*ethanol[:3], thiol])
    with pytest.raises(ConfigError, match="differ from the elements of preset 'ani1'"):
        ANIModel(datamodule={**MOLECULE_TARGETS, "elements": ["H", "C", "O", "S"]}, which_ani="ani1")
    with pytest.raises(ConfigError, match=r"radial cutoff 5\.2 of preset 'ani1'"):
        ANIModel(datamodule={**MOLECULE_TARGETS, "cut_off": 4.0}, which_ani="ani1")
    with pytest.raises(ConfigError, match="fixes the AEV"):
        ANIModel(datamodule=MOLECULE_TARGETS, aev={"angular_cutoff": 3.0})


def test_changing_the_preset_takes_its_cutoff_and_elements() -> None:
    model = ANIModel(datamodule=MOLECULE_TARGETS, which_ani="ani2")
    assert model.config.datamodule.cut_off == 5.1
    assert model.config.datamodule.elements == list(PRESETS["ani2"].elements)
    own = ANIModel(datamodule={**MOLECULE_TARGETS, "cut_off": 4.5}, which_ani=None, aev={"num_angle_sections": 4})
    assert own.config.datamodule.elements is None
    assert own.config.datamodule.cut_off == 4.5


def test_own_elements_aev_and_sizes(ethanol, tmp_path: Path) -> None:
    model = ANIModel(datamodule={**MOLECULE_TARGETS, "elements": ["H", "C", "O"], "cut_off": 4.6},
                     compute_forces=True, which_ani=None, aev={"num_radial_shifts": 8, "num_angle_sections": 4},
                     hidden_sizes={"H": [8], "C": [16, 8], "O": [12]}, trainer={"default_root_dir": str(tmp_path)})
    network = model.initialise(ethanol[:4]).module.network
    assert network.aev.length == 3 * 8 + 6 * (4 * 4)
    assert [len(net) for net in network.elements.networks] == [3, 5, 3]
    assert network.elements.networks[1][0].out_features == 16
    assert network.aev.radial_cutoff == 4.6


def test_per_element_sizes_need_their_elements() -> None:
    with pytest.raises(ConfigError, match="needs exactly the elements"):
        ANIModel(datamodule=MOLECULE_TARGETS, hidden_sizes={"H": [8], "C": [8]})
    with pytest.raises(ConfigError, match="needs the elements"):
        ANIModel(datamodule=MOLECULE_TARGETS, which_ani=None, hidden_sizes={"Cu": [8]})
