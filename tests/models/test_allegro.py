"""Allegro passes the family contract (learning included), is strictly local and honours
per-layer cutoffs smoothly."""

from __future__ import annotations

import warnings
from pathlib import Path

import ase
import pytest
import torch
from e3nn import o3

from physicsml_like.models import AllegroModel
from physicsml_like.models.allegro import AllegroModelConfig, PairTensorProduct
from physicsml_like.nn.builder import default_dtype
from physicsml_like.nn.graph import OUT_PER_ATOM_GRAPH_SCALARS, AtomicGraph

from .contract import (
    MOLECULE_TARGETS,
    AccuracyRun,
    FamilyContract,
    check_symmetries,
    perturbed,
    small_config,
)

ARCH = {"env_embed_multiplicity": 4, "num_layers": 2, "max_ell": 2, "two_body_latent_mlp_latent_dimensions": [16, 16], "latent_mlp_latent_dimensions": [16], "mlp_latent_dimensions": [8]}
#: The architecture of the slow accuracy runs.
LONG_ARCH = {"env_embed_multiplicity": 16, "num_layers": 2, "max_ell": 2, "two_body_latent_mlp_latent_dimensions": [64, 128], "latent_mlp_latent_dimensions": [128], "mlp_latent_dimensions": [64]}


def _per_atom_energies(model: AllegroModel, atoms: ase.Atoms, cutoff: float) -> torch.Tensor:
    """The network's per-atom outputs for a molecule (all pairs within ``cutoff``)."""
    network = model.module.network
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    slot = model.module.element_mapping.lookup_table()
    species = torch.tensor([slot[z] for z in atoms.numbers])
    distances = torch.cdist(positions, positions)
    centre, neighbour = torch.nonzero((distances < cutoff) & (distances > 0), as_tuple=True)
    vectors = positions[neighbour] - positions[centre]
    graph = AtomicGraph(
        node_attrs=torch.nn.functional.one_hot(species, model.module.spec.num_node_features).to(torch.float64),
        species=species, positions=positions, edge_index=torch.stack([centre, neighbour]),
        edge_vectors=vectors, edge_lengths=vectors.norm(dim=-1), batch=torch.zeros(len(atoms), dtype=torch.long), num_graphs=1,
    )
    with torch.no_grad():
        return network(graph)[OUT_PER_ATOM_GRAPH_SCALARS][:, 0]


def _dimer_energy(model: AllegroModel, distance: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # beyond the cutoff the two atoms have no neighbour
        pair = ase.Atoms("Cu2", positions=[[0, 0, 0], [distance, 0, 0]], cell=[20, 20, 20], pbc=True)
        return float(model.predict([pair])["energy"][0])


class TestAllegro(FamilyContract):
    model_class = AllegroModel
    arch = ARCH
    periodic_fields = {"per_layer_cutoffs": [4.0, 3.5, 3.0]}
    learning_arch = {"env_embed_multiplicity": 8, "num_layers": 2, "max_ell": 1, "two_body_latent_mlp_latent_dimensions": [32, 64],
                     "latent_mlp_latent_dimensions": [64], "mlp_latent_dimensions": [32]}
    learning_epochs = 8
    learning_lr = 1e-2
    accuracy_runs = (
        AccuracyRun("ethanol", LONG_ARCH, epochs=20, max_force_fraction=0.1, max_energy_per_atom=0.006,
                    measured="seed 0, one thread, ~1.5 min: forces 0.051 eV/Å (0.066 x zero-force), energy 2.0 meV/atom"),
        AccuracyRun("cu_emt", LONG_ARCH, epochs=15, train=200, max_force_fraction=0.09, max_energy_per_atom=0.025, max_stress=0.012,
                    measured="seed 0, one thread, ~3 min: forces 0.041 eV/Å (0.055 x zero-force), energy 12.8 meV/atom, stress 7.6 meV/Å³"),
    )

    def test_strictly_local(self, molecule_model: AllegroModel) -> None:
        """An atom's energy depends on its neighbours only, not on their neighbours (unlike message
        passing): moving C, 6 Å from A but within B's cutoff, leaves A's energy unchanged."""
        cutoff = molecule_model.config.datamodule.cut_off
        chain = ase.Atoms("COC", positions=[[0, 0, 0], [3.0, 0, 0], [6.0, 0, 0]])
        moved = chain.copy()
        moved.positions[2] = [5.5, 1.0, 0.3]
        before, after = _per_atom_energies(molecule_model, chain, cutoff), _per_atom_energies(molecule_model, moved, cutoff)
        assert abs(float(before[0] - after[0])) < 1e-12
        assert abs(float(before[1] - after[1])) > 1e-6  # B sees C move

    def test_per_layer_cutoffs_are_smooth_and_bound_the_pair_energy(self, periodic_model: AllegroModel) -> None:
        # cutoffs [4.0, 3.5, 3.0]: continuous where a layer lets go of a pair ...
        for r in (3.5, 3.0):
            assert abs(_dimer_energy(periodic_model, r - 1e-7) - _dimer_energy(periodic_model, r + 1e-7)) < 1e-9
        # ... and beyond the last cutoff the pair's energy is zero: only the two atoms' shifts remain
        far = _dimer_energy(periodic_model, 3.2)
        assert far == pytest.approx(_dimer_energy(periodic_model, 3.9), abs=1e-12)
        assert far == pytest.approx(_dimer_energy(periodic_model, 8.0), abs=1e-12)
        assert abs(_dimer_energy(periodic_model, 2.6) - far) > 1e-6

    def test_every_layer_says_what_it_is(self, molecule_model: AllegroModel) -> None:
        text = repr(molecule_model.module.network)
        assert "trainable weights" in text and "cutoffs=[4.0, 4.0, 4.0]" in text
        assert "PairTensorProduct(1x0e+1x1o+1x2e x 1x0e+1x1o+1x2e -> " in text
        assert "ChannelMixing" in text and " weights)" in text
        # the last layer keeps only what the dipole head reads
        assert "-> 4x(1x1o), resnet=True" in text


@pytest.mark.parametrize("targets", [("0e", "1o", "2o"), ("0e",)])
def test_pair_tensor_product_equals_e3nn(targets: tuple[str, ...]) -> None:
    """The pair tensor product is e3nn's "uuu" TensorProduct (both contraction orders)."""
    irreps1 = o3.Irreps("0e + 1o + 1e + 2e")
    irreps2 = o3.Irreps("0e + 1o + 2e")
    with default_dtype(torch.float64):
        tp = PairTensorProduct(irreps1, irreps2, [o3.Irrep(ir) for ir in targets])
    assert tp.outer_first == (len(targets) > 1)
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(7, 3, irreps1.dim, generator=generator, dtype=torch.float64)
    x2 = torch.randn(7, 3, irreps2.dim, generator=generator, dtype=torch.float64)
    instructions = [(p.i1, p.i2, k, "uuu", False) for k, p in enumerate(tp.paths.paths)]
    irreps_out = o3.Irreps([(3, p.ir_out) for p in tp.paths.paths])
    with default_dtype(torch.float64):
        reference = o3.TensorProduct(
            o3.Irreps([(3, ir) for _, ir in irreps1]), o3.Irreps([(3, ir) for _, ir in irreps2]), irreps_out, instructions
        )

    def mul_major(x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:  # [E, U, D] -> e3nn layout
        blocks, start = [], 0
        for _, ir in irreps:
            blocks.append(x[:, :, start : start + ir.dim].reshape(len(x), -1))
            start += ir.dim
        return torch.cat(blocks, dim=-1)

    ours = torch.cat(tp(x1, x2), dim=-1)  # [E, U, K], path after path
    expected = reference(mul_major(x1, irreps1), mul_major(x2, irreps2))
    torch.testing.assert_close(mul_major(ours, o3.Irreps([(1, p.ir_out) for p in tp.paths.paths])), expected, rtol=0, atol=1e-12)


def test_config_names_the_wrong_field() -> None:
    with pytest.raises(ValueError, match="per_layer_cutoffs"):
        AllegroModelConfig(num_layers=2, per_layer_cutoffs=[5.0, 4.0])
    with pytest.raises(ValueError, match="per_layer_cutoffs"):
        AllegroModelConfig(num_layers=1, per_layer_cutoffs=[5.0, 6.0], datamodule={"cut_off": 5.0})
    with pytest.raises(ValueError, match="latent_mlp_latent_dimensions"):
        AllegroModelConfig(two_body_latent_mlp_latent_dimensions=[32, 64], latent_mlp_latent_dimensions=[32])


def test_reachable_by_name() -> None:
    from physicsml_like import load_from_dict

    model = load_from_dict({"name": "allegro_model", "config": {**ARCH, "per_layer_cutoffs": [5.0, 4.0, 3.0]}})
    assert isinstance(model, AllegroModel) and model.config.per_layer_cutoffs == [5.0, 4.0, 3.0]


def test_rotation_equivariant_without_parity(tmp_path: Path, ethanol) -> None:
    config = small_config(tmp_path, {**MOLECULE_TARGETS, "y_graph_vector": "dipole"}, model_dtype="float64", **{**ARCH, "parity": False})
    check_symmetries(perturbed(AllegroModel(config), ethanol[:10]), ethanol[5])
