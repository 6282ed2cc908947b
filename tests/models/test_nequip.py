"""NequIP passes the family contract (learning included) and its convolution is e3nn's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from e3nn import o3

from physicsml_like.models import NequIPModel
from physicsml_like.models.nequip import EdgeConvolution
from physicsml_like.nn.builder import default_dtype

from .contract import (
    MOLECULE_TARGETS,
    AccuracyRun,
    FamilyContract,
    check_energy_continuous_at_cutoff,
    check_symmetries,
    perturbed,
    small_config,
)

ARCH = {"num_features": 4, "num_layers": 3, "max_ell": 2, "radial_mlp": [16]}


class TestNequIP(FamilyContract):
    model_class = NequIPModel
    arch = ARCH
    learning_arch = {"num_features": 16, "num_layers": 2, "max_ell": 1, "radial_mlp": [32]}
    learning_lr = 1e-2
    accuracy_runs = (
        AccuracyRun("ethanol", {"num_features": 32, "num_layers": 3, "max_ell": 2}, epochs=20, max_force_fraction=0.08,
                    max_energy_per_atom=0.005, measured="seed 0, one thread, ~3 min: forces 0.037 eV/Å (0.048 x zero-force), energy 1.6 meV/atom"),
        AccuracyRun("cu_emt", {"num_features": 16, "num_layers": 3, "max_ell": 2}, epochs=15, train=200, max_force_fraction=0.08,
                    max_energy_per_atom=0.012, max_stress=0.005,
                    measured="seed 0, one thread, ~2 min: forces 0.035 eV/Å (0.047 x zero-force), energy 4.8 meV/atom, stress 1.7 meV/Å³"),
    )

    def test_energy_is_continuous_at_the_cutoff(self, molecule_model: NequIPModel) -> None:
        check_energy_continuous_at_cutoff(molecule_model)

    def test_float64_model_leaves_the_default_dtype_alone(self, molecule_model: NequIPModel) -> None:
        assert torch.get_default_dtype() == torch.float32
        assert all(p.dtype == torch.float64 for p in molecule_model.module.network.parameters())

    def test_last_block_computes_only_what_the_heads_read(self, molecule_model: NequIPModel, periodic_model: NequIPModel) -> None:
        # with a dipole the last block keeps scalars and l=1 vectors, without one only scalars
        assert str(molecule_model.module.network.irreps_final) == "4x0e+4x1o"
        assert str(periodic_model.module.network.irreps_final) == "4x0e"

    def test_every_weight_reaches_an_output(self, periodic_model: NequIPModel, cu_frames) -> None:
        # blocks are pruned backwards from the heads: no weight is left that cannot get a gradient
        module = periodic_model.module
        datamodule = periodic_model._datamodule(periodic_model.config, train_data=cu_frames[:2])
        datamodule.setup("fit")
        predictions = module.compute(next(iter(datamodule.train_dataloader())), create_graph=True)
        sum((value**2).sum() for value in predictions.values.values()).backward()
        dead = {name: int((p.grad == 0).sum()) for name, p in module.network.named_parameters() if p.grad is None or (p.grad == 0).any()}
        assert not dead, dead
        assert str(module.network.blocks[1].irreps_out) == "4x0e+4x1o+4x2e"  # 0o, 1e, 2o cannot reach 0e

    def test_every_layer_says_what_it_is(self, molecule_model: NequIPModel) -> None:
        text = repr(molecule_model.module.network)
        assert "trainable weights" in text and "per-edge weights" in text and "cutoff=4.0" in text
        assert "Linear(4x0e+4x1o+4x1e+4x2e+4x2o -> " in text  # e3nn layers print their irreps


def test_convolution_equals_e3nn_tensor_product() -> None:
    """The channel-major convolution is e3nn's "uvu" TensorProduct summed over neighbours."""
    with default_dtype(torch.float64):
        irreps_in = o3.Irreps("3x0e + 3x1o + 3x1e + 3x2e")
        irreps_sh = o3.Irreps.spherical_harmonics(2, p=-1)
        targets = [o3.Irrep(ir) for ir in ("0e", "0o", "1o", "2e", "2o")]
        conv = EdgeConvolution(irreps_in, irreps_sh, targets, num_basis=5, radial_hidden=[7],
                               radial_activation="SiLU", avg_num_neighbours=3.0)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(6, irreps_in.dim, generator=generator)
        vectors = torch.randn(20, 3, generator=generator)
        edge_index = torch.randint(0, 6, (2, 20), generator=generator)
        radial, envelope = torch.randn(20, 5, generator=generator), torch.rand(20, generator=generator)
        edge_sh = o3.spherical_harmonics(irreps_sh, vectors, normalize=True, normalization="component")
        instructions = [(p.i1, p.i2, k, "uvu", True) for k, p in enumerate(conv.paths.paths)]
        irreps_mid = o3.Irreps([(3, p.ir_out) for p in conv.paths.paths])
        reference_tp = o3.TensorProduct(irreps_in, irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False)
        weights = conv.path_weights(radial, envelope).reshape(20, -1)
        per_edge = reference_tp(x[edge_index[1]], edge_sh, weights)
        reference = torch.zeros(6, irreps_mid.dim, dtype=torch.float64).index_add_(0, edge_index[0], per_edge)
        assert conv.irreps_out == irreps_mid.simplify()
        torch.testing.assert_close(conv(x, edge_sh, radial, envelope, edge_index), reference, rtol=0, atol=1e-12)


def test_rejects_what_it_cannot_predict() -> None:
    from physicsml_like.models.nequip import NequIP, NequIPModelConfig
    from physicsml_like.nn.graph import OutputSpec

    config = NequIPModelConfig(**ARCH)
    with pytest.raises(ValueError, match="edge_scalars"):
        NequIP(config, OutputSpec(num_elements=2, num_node_features=2, num_edge_scalars=1), 10.0)
    with pytest.raises(ValueError, match="graph_attrs_cols"):
        NequIP(config, OutputSpec(num_elements=2, num_node_features=2, num_graph_scalars=1, num_graph_attrs=3), 10.0)
    with pytest.raises(ValueError, match="parit"):
        NequIPModelConfig(nonlinearity_scalars={"e": "SiLU"})


def test_reachable_by_name() -> None:
    from physicsml_like import load_from_dict

    model = load_from_dict({"name": "nequip_model", "config": {**ARCH, "parity": False}})
    assert isinstance(model, NequIPModel) and model.config.num_features == 4 and not model.config.parity


def test_rotation_equivariant_without_parity(tmp_path: Path, ethanol) -> None:
    config = small_config(tmp_path, {**MOLECULE_TARGETS, "y_graph_vector": "dipole"}, model_dtype="float64", **{**ARCH, "parity": False})
    model = perturbed(NequIPModel(config), ethanol[:10])
    assert "1o" not in str(model.module.network.irreps_final)
    check_symmetries(model, ethanol[5])
