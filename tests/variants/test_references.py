"""Reference energies refitted to new labels on the pretrained model's residual, and the rule
for elements the pretrained model does not know."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from physicsml_like import ConfigError, EGNNModel, load_model

from .alloys import alloy_cells, relabelled, tiny_fields

SHIFT = {29: 1.3, 79: -0.4}  # eV per Cu and per Au atom: "another level of theory"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cuau")
    return EGNNModel(tiny_fields(root, epochs=3)).train(alloy_cells(40, seed=0)).save(root / "model")


def _shift(frames: list) -> np.ndarray:
    return np.array([sum(SHIFT[int(z)] for z in f.numbers) for f in frames])


def _refit(root: Path, pretrained: Path, data: list, rule: object) -> EGNNModel:
    tl = {"pretrained": str(pretrained), "refit_references": rule, "stages": [{"trainer": {"max_epochs": 0}}]}
    return EGNNModel(tiny_fields(root, transfer_learning=tl)).train(data)


@pytest.mark.filterwarnings("ignore:nothing was trained")  # the refit alone is compared
def test_a_per_element_offset_costs_nothing_with_the_residual_refit(tmp_path: Path, pretrained: Path) -> None:
    source = load_model(pretrained)
    train, held_out = alloy_cells(12, seed=1), alloy_cells(10, seed=2)
    before = source.predict(train)
    data = relabelled(train, before["energy"] + _shift(train), before["forces"])
    model = _refit(tmp_path, pretrained, data, "residual")
    expected = source.predict(held_out)["energy"] + _shift(held_out)
    per_atom = (model.predict(held_out)["energy"] - expected) / 8
    assert np.abs(per_atom).max() < 1e-6
    references = model.module.statistics.element_reference
    for z, offset in SHIFT.items():
        assert references[z] - source.module.statistics.element_reference[z] == pytest.approx(offset, abs=1e-6)
    assert model.module.energy_target.scale == source.module.energy_target.scale, "the pretrained scale is kept"
    assert model.module.energy_target.shift == source.module.energy_target.shift

    # mutation: references fitted to the labels alone count the network's per-element share twice
    labels_only = _refit(tmp_path, pretrained, data, "labels")
    off = np.abs(labels_only.predict(held_out)["energy"] - expected) / 8
    assert off.max() > 1e-3  # measured 3.7 meV/atom, against < 1e-6 eV/atom above
    assert _refit(tmp_path, pretrained, data, True).config.transfer_learning.refit_references == "labels"


@pytest.mark.filterwarnings("ignore:nothing was trained")
def test_the_residual_refit_is_the_least_squares_fit_of_what_the_model_misses(tmp_path: Path, pretrained: Path) -> None:
    source = load_model(pretrained)
    train = alloy_cells(12, seed=3, rattle=0.15)  # EMT labels: the pretrained model is off by more than a constant
    labels = np.array([f.get_potential_energy() for f in train])
    counts = np.array([[np.sum(f.numbers == 29), np.sum(f.numbers == 79)] for f in train], dtype=float)
    expected_change, *_ = np.linalg.lstsq(counts, labels - source.predict(train)["energy"], rcond=None)
    model = _refit(tmp_path, pretrained, train, "residual")
    old, new = source.module.statistics.element_reference, model.module.statistics.element_reference
    np.testing.assert_allclose([new[29] - old[29], new[79] - old[79]], expected_change, rtol=0, atol=1e-9)
    assert np.abs(expected_change).max() > 1e-4, "a non-trivial change"
    residual = labels - model.predict(train)["energy"]
    np.testing.assert_allclose(counts.T @ residual, 0.0, atol=1e-8)  # no per-element part left


def test_elements_the_pretrained_model_does_not_know_are_named(tmp_path: Path, pretrained: Path) -> None:
    data = alloy_cells(3, seed=4) + alloy_cells(3, seed=5, elements=("Ni", "Al"))
    tl = {"pretrained": str(pretrained), "stages": [{"trainer": {"max_epochs": 1}}]}
    with pytest.raises(ConfigError, match=r"holds Al, Ni, which the pretrained model .* does not know \(it was trained on Cu, Au\)"):
        EGNNModel(tiny_fields(tmp_path, transfer_learning=tl)).train(data)
    with pytest.raises(ConfigError, match="holds Ni"):
        EGNNModel(tiny_fields(tmp_path, transfer_learning=tl)).train(alloy_cells(3, seed=4), alloy_cells(2, seed=6, elements=("Cu", "Ni")))
