"""TensorNet passes the family contract (learning included) and is invariant under reflections (O(3))."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import torch

from physicsml_like.models import TensorNetModel
from physicsml_like.models.tensornet.layers import compose, decompose, part_norms

from .contract import (
    MOLECULE_TARGETS,
    AccuracyRun,
    FamilyContract,
    check_energy_continuous_at_cutoff,
    perturbed,
)


def _mirrored(atoms: ase.Atoms) -> ase.Atoms:
    mirrored = atoms.copy()
    mirrored.positions[:, 0] *= -1
    return mirrored


class TestTensorNet(FamilyContract):
    model_class = TensorNetModel
    arch = {"num_features": 8, "num_radial": 8, "num_interaction_layers": 2}
    molecule_extras = {"y_node_scalars": ["charges"]}  # no dipole head
    learning_arch = {"num_features": 32, "num_radial": 16, "num_interaction_layers": 2}
    learning_epochs = 4
    accuracy_runs = (
        AccuracyRun("cu_emt", {"num_features": 16, "num_radial": 16}, epochs=6, lr=5e-3, train=100,
                    max_force_fraction=0.3, max_stress=0.015,
                    measured="seed 0, one thread, 19 s: forces 0.072 eV/Å (0.10 x zero-force), stress 0.006 eV/Å³"),
    )

    def test_o3_energy_is_invariant_under_reflection_and_so3_is_not(
        self, molecule_model: TensorNetModel, ethanol: list[ase.Atoms], tmp_path: Path
    ) -> None:
        atoms = ethanol[5]
        ref = molecule_model.predict([atoms, _mirrored(atoms)])
        assert abs(ref["energy"][0] - ref["energy"][1]) < 1e-9
        np.testing.assert_allclose(ref["forces"][1], ref["forces"][0] * [-1, 1, 1], atol=1e-9)
        config = self.config(tmp_path, MOLECULE_TARGETS, equivariance="SO(3)")
        chiral = perturbed(TensorNetModel(config), ethanol[:20]).predict([atoms, _mirrored(atoms)])
        assert abs(chiral["energy"][0] - chiral["energy"][1]) > 1e-7

    def test_energy_is_continuous_at_the_cutoff(self, molecule_model: TensorNetModel) -> None:
        check_energy_continuous_at_cutoff(molecule_model)

    def test_every_layer_says_what_it_is(self, molecule_model: TensorNetModel) -> None:
        text = repr(molecule_model.module.network)
        assert "features=8, layers=2" in text and "trainable weights" in text
        assert "8x(3x3) -> 8x(3x3), O(3)" in text and "8 -> 8 channels | 64 weights" in text
        assert "cutoff=4.0" in text


def test_tensor_parts_recompose_and_rotate() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, 3, 3, dtype=torch.float64, generator=generator)
    t, a, s = decompose(x)
    torch.testing.assert_close(compose(t, a, s), x)
    assert torch.allclose(s, s.transpose(-1, -2)) and torch.allclose(s.diagonal(dim1=-2, dim2=-1).sum(-1), torch.zeros(5, 4, dtype=torch.float64))
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    rotation = q * torch.sign(torch.linalg.det(q))
    rotated = decompose(rotation @ x @ rotation.T)
    for before, after in zip(part_norms(t, a, s), part_norms(*rotated), strict=True):
        torch.testing.assert_close(before, after)
    torch.testing.assert_close(rotated[1], a @ rotation.T)  # the skew part rotates as a vector
