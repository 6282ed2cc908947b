"""MACE: the family contract (learning included), the reference architecture and its layers
against e3nn."""

from __future__ import annotations

import collections
import copy
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from e3nn import o3

import physicsml_like.models.mace.convolution as convolution
from physicsml_like import MACEModel
from physicsml_like.config.base import ConfigError
from physicsml_like.config.training import OptimizerConfig
from physicsml_like.data.neighbours import neighbour_list
from physicsml_like.models.mace import (
    Edges,
    EdgeTensorProduct,
    ElementLinear,
    IrrepsLinear,
    SymmetricContraction,
)
from physicsml_like.models.mace.coupling import coupling_basis
from physicsml_like.models.mace.edges import reverse_pairs
from physicsml_like.models.mace.product import AtomElements

from .contract import MOLECULE_TARGETS, PERIODIC_TARGETS, AccuracyRun, FamilyContract


# ---------------------------------------------------------------------- the family contract
class TestMACE(FamilyContract):
    model_class = MACEModel
    arch = {"hidden_irreps": "8x0e + 8x1o", "max_ell": 2, "correlation": 3, "num_interactions": 2, "radial_mlp": [16, 16]}
    learning_arch = {"hidden_irreps": "16x0e + 16x1o", "max_ell": 2, "correlation": 3, "radial_mlp": [32, 32]}
    learning_lr = 1e-2
    accuracy_runs = (
        AccuracyRun("cu_emt", {"hidden_irreps": "16x0e + 16x1o", "max_ell": 2, "correlation": 3, "radial_mlp": [32, 32]},
                    epochs=6, train=100, max_force_fraction=0.3, max_stress=0.03,
                    measured="seed 0, one thread, 18 s: forces 0.094 eV/Å (0.13 x zero-force), stress 0.016 eV/Å³"),
    )

    def test_float64_model_leaves_the_default_dtype_alone(self, molecule_model: MACEModel) -> None:
        assert torch.get_default_dtype() == torch.float32
        network = molecule_model.module.network
        assert all(t.dtype == torch.float64 for t in itertools.chain(network.parameters(), network.buffers()) if t.is_floating_point())

    def test_every_layer_says_what_it_is(self, molecule_model: MACEModel) -> None:
        text = repr(molecule_model.module.network)
        assert "trainable weights" in text
        assert "EdgeTensorProduct(8x0e+8x1o ⊗ 1x0e+1x1o+1x2e" in text
        assert "SymmetricContraction(8x0e+8x1o+8x2e -> 8x0e+8x1o | correlation=3, paths 0e:[1, 3, 11], 1o:[1, 4, 21]" in text
        assert "RadialMLP(8 -> 16 -> 16 -> " in text and "cutoff=4.0" in text

    def test_weight_decay_only_where_mace_torch_applies_it(self, molecule_model: MACEModel) -> None:
        network = molecule_model.module.network
        optimizer = OptimizerConfig(name="AdamW", config={"lr": 1e-3, "weight_decay": 5e-7})
        before = copy.deepcopy(optimizer.model_dump())
        groups = network.parameter_groups(optimizer)
        assert optimizer.model_dump() == before  # the user's config is only read
        by_name = {g["name"]: g for g in groups}
        assert {name: g["weight_decay"] for name, g in by_name.items()} == {
            "embedding": 0.0, "interactions_decay": 5e-7, "interactions_no_decay": 0.0, "products": 5e-7, "readouts": 0.0,
        }
        ids = lambda params: {id(p) for p in params}  # noqa: E731
        decayed = ids(by_name["interactions_decay"]["params"])
        for block in network.interactions:
            assert ids(block.linear.parameters()) <= decayed
            assert not ids(block.radial_mlp.parameters()) & decayed
            assert not ids(block.linear_up.parameters()) & decayed
            assert not ids(block.skip.parameters()) & decayed
        assert ids(by_name["products"]["params"]) == ids(network.products.parameters())
        listed = [id(p) for g in groups for p in g["params"]]
        assert sorted(listed) == sorted(id(p) for p in network.parameters() if p.requires_grad)  # each once
        # without a user value the decayed groups take the optimiser's default
        plain = network.parameter_groups(OptimizerConfig(name="AdamW", config={"lr": 1e-3}))
        assert [("weight_decay" in g) for g in plain] == [True, False, True, False, True]
        torch.optim.AdamW(plain, lr=1e-3)


    def test_training_backward_differentiates_for_the_parameters_only(
        self, periodic_model: MACEModel, cu_frames, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Same parameter gradients as a full ``loss.backward()``, without the derivatives for
        the positions and strain: no tensor product is evaluated for the harmonics' gradient."""
        module = periodic_model.module
        monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)
        datamodule = periodic_model._datamodule(periodic_model._call_config(), train_data=cu_frames[:4])
        datamodule.prepare_data()
        datamodule.setup("fit")
        batch = next(iter(datamodule.train_dataloader()))
        evaluated: collections.Counter[int] = collections.Counter()
        partials = convolution._partials

        def counting(plan, edges, slots, wanted):
            evaluated.update(wanted)
            return partials(plan, edges, slots, wanted)

        monkeypatch.setattr(convolution, "_partials", counting)
        params = [p for p in module.parameters() if p.requires_grad]
        gradients, sh_gradients = {}, {}
        for backward in ("full", "module"):
            module.zero_grad(set_to_none=True)
            loss = module.training_step(batch, 0)
            evaluated.clear()
            loss.backward() if backward == "full" else module.backward(loss)
            gradients[backward] = [p.grad.clone() for p in params]
            sh_gradients[backward] = evaluated[0]
        module.zero_grad(set_to_none=True)
        assert sh_gradients["full"] > 0 and sh_gradients["module"] == 0
        for full, restricted in zip(gradients["full"], gradients["module"], strict=True):
            torch.testing.assert_close(restricted, full, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- the reference architecture
def test_reference_settings_have_mace_torch_parameter_count(tmp_path: Path, cu_frames) -> None:
    """mace-torch's MACE (plain first interaction, residual after) with these settings and one
    element has 60,752 trainable parameters; the same count shows the same architecture."""
    model = MACEModel(
        datamodule={**PERIODIC_TARGETS, "cut_off": 5.0},
        compute_forces=True, compute_stress=True,
        hidden_irreps="32x0e + 32x1o", max_ell=2, correlation=3, num_interactions=2,
        num_bessel=8, num_polynomial_cutoff=5, mlp_irreps="16x0e",
        trainer={"default_root_dir": str(tmp_path)},
    ).initialise(cu_frames[:4])
    network = model.module.network
    assert sum(p.numel() for p in network.parameters() if p.requires_grad) == 60_752


def test_config_errors_name_the_field() -> None:
    for fields, field in [
        ({"hidden_irreps": "32x0e + 16x1o"}, "hidden_irreps"),
        ({"hidden_irreps": "32x1o"}, "hidden_irreps"),
        ({"hidden_irreps": "banana"}, "hidden_irreps"),
        ({"mlp_irreps": "16x1o"}, "mlp_irreps"),
        ({"correlation": [3, 3, 3]}, "correlation"),
        ({"gate": "swish-ish"}, "gate"),
    ]:
        with pytest.raises(ConfigError, match=field):
            MACEModel(datamodule=MOLECULE_TARGETS, compute_forces=True, **fields)


# ---------------------------------------------------------------------- layers against e3nn
def _channels_last(x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
    """e3nn's ``[N, mul x dim ...]`` layout -> ours ``[N, D, c]``."""
    parts = [x[:, s].reshape(len(x), mul, ir.dim).transpose(1, 2) for (mul, ir), s in zip(irreps, irreps.slices(), strict=True)]
    return torch.cat(parts, dim=1)


def test_irreps_linear_is_e3nn_linear() -> None:
    irreps_in, irreps_out = o3.Irreps("4x0e + 4x1o + 4x2e"), o3.Irreps("3x0e + 3x1o")
    ours, theirs = IrrepsLinear(irreps_in, irreps_out), o3.Linear(irreps_in, irreps_out)
    with torch.no_grad():
        theirs.weight.copy_(torch.cat([w.flatten() for w in ours.weights]))
    x = torch.randn(5, irreps_in.dim)
    torch.testing.assert_close(ours(_channels_last(x, irreps_in)), _channels_last(theirs(x), irreps_out))


def test_element_linear_is_e3nn_tensor_product_with_one_hot() -> None:
    irreps_in, irreps_out = o3.Irreps("4x0e + 4x1o"), o3.Irreps("3x0e + 3x1o")
    ours = ElementLinear(irreps_in, irreps_out, num_elements=3)
    theirs = o3.FullyConnectedTensorProduct(irreps_in, "3x0e", irreps_out)
    with torch.no_grad():  # ours: rows (element, channel); e3nn: (channel, element)
        theirs.weight.copy_(torch.cat([w.view(3, 4, 3).transpose(0, 1).flatten() for w in ours.weights]))
    x, onehot = torch.randn(6, irreps_in.dim), torch.eye(3)[torch.tensor([0, 2, 1, 1, 0, 2])]
    torch.testing.assert_close(ours(_channels_last(x, irreps_in), onehot), _channels_last(theirs(x, onehot), irreps_out))


def test_edge_tensor_product_is_e3nn_uvu_tensor_product() -> None:
    irreps_in, irreps_sh = o3.Irreps("4x0e + 4x1o"), o3.Irreps.spherical_harmonics(2)
    ours = EdgeTensorProduct(irreps_in, irreps_sh, o3.Irreps("4x0e + 4x1o + 4x2e"))
    # output blocks are grouped by irrep; the weights follow ours.paths
    order = sorted(range(ours.num_paths), key=lambda k: ours.path_irreps[k])
    instructions = [(i_in, i_sh, order.index(k), "uvu", True) for k, (i_in, i_sh, _) in enumerate(ours.paths)]
    theirs = o3.TensorProduct(irreps_in, irreps_sh, ours.irreps_out, instructions, shared_weights=False, internal_weights=False)
    n = 7
    x, vectors, weights = torch.randn(n, irreps_in.dim), torch.randn(n, 3), torch.randn(n, ours.weight_numel)
    sh = o3.spherical_harmonics(irreps_sh, vectors, normalize=True, normalization="component")
    one_per_edge = Edges(torch.arange(n), torch.arange(n), None, n, n)
    torch.testing.assert_close(
        ours(_channels_last(x, irreps_in), sh, weights, one_per_edge), _channels_last(theirs(x, sh, weights), ours.irreps_out)
    )


@pytest.mark.parametrize("contraction_by", ["broadcast", "bmm", "captured"])
def test_symmetric_contraction_is_the_coupled_power_series(contraction_by: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way of contracting with the weights (broadcast for small inputs, bmm for large ones,
    each atom's own weights while captured) gives the reference's power series."""
    from physicsml_like.models.mace import product
    from physicsml_like.nn.capture import capturing

    if contraction_by == "bmm":
        monkeypatch.setattr(product, "_BROADCAST_ELEMENTS", (0, 0))
    irreps_in = o3.Irreps("3x0e + 3x1o + 3x2e")
    contraction = SymmetricContraction(irreps_in, o3.Irreps("3x0e + 3x1o"), correlation=3, num_elements=2)
    assert contraction.num_paths == [[1, 3, 11], [1, 4, 21]]  # the reference's path counts
    x = torch.randn(5, 9, 3, dtype=torch.float64)
    species = torch.tensor([0, 1, 1, 0, 1])
    if contraction_by == "captured":
        with capturing():
            elements = AtomElements.of(species, 2)
            assert elements.groups is None
            got = contraction.to(torch.float64)(x, elements)
    else:
        elements = AtomElements.of(species, 2)
        assert elements.groups is not None
        got = contraction.to(torch.float64)(x, elements)
    weights = iter(contraction.weights)
    expected = []
    for _, ir in contraction.irreps_out:
        total = torch.zeros(5, ir.dim, 3, dtype=torch.float64)
        for nu in (1, 2, 3):
            u = coupling_basis("0e + 1o + 2e", nu, ir)
            w = next(weights)[species]  # [N, K, c]
            letters = "xyz"[:nu]
            power = torch.einsum(",".join(f"n{a}c" for a in letters) + f"->n{letters}c", *([x] * nu))
            total += torch.einsum(f"m{letters}k,n{letters}c,nkc->nmc", u, power, w)
        expected.append(total)
    torch.testing.assert_close(got, torch.cat(expected, dim=1))


def test_fused_convolution_derivatives(monkeypatch) -> None:
    """Every derivative of the fused neighbour sum, to second order, by finite differences."""
    monkeypatch.setattr(convolution, "_EDGE_CHUNK", 5)  # several chunks
    tp = EdgeTensorProduct(o3.Irreps("2x0e + 2x1o"), o3.Irreps.spherical_harmonics(2), o3.Irreps("2x0e + 2x1o + 2x2e")).double()
    generator = torch.Generator().manual_seed(0)
    n_nodes, n_edges, n_bonds = 3, 7, 4
    edges = Edges(torch.randint(0, n_nodes, (n_edges,), generator=generator), torch.randint(0, n_nodes, (n_edges,), generator=generator),
                  torch.randint(0, n_bonds, (n_edges,), generator=generator), n_nodes, n_bonds)
    inputs = (torch.randn(n_nodes, 4, 2, dtype=torch.float64, requires_grad=True),
              torch.randn(n_edges, 9, dtype=torch.float64, requires_grad=True),
              torch.randn(n_bonds, tp.weight_numel, dtype=torch.float64, requires_grad=True))

    def f(node, sh, radial):
        return tp(node, sh, radial, edges)

    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_reverse_pairs_find_each_bond_once() -> None:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    i, j, shifts = neighbour_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    vectors = torch.tensor(atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array)
    bonds, bond_of_edge = reverse_pairs(torch.tensor(np.stack([i, j])), vectors)
    assert len(bonds) == len(i) // 2 and torch.bincount(bond_of_edge).eq(2).all()
    lengths = vectors.norm(dim=1)
    assert torch.equal(lengths, lengths[bonds][bond_of_edge])
