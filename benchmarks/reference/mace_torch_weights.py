"""Load a mace-torch ``ScaleShiftMACE`` state dict, or physicsml's MACE state dict, into this
package's MACE network.

Used by ``benchmarks/reference_replay.py`` to start two codes from the same weights. Every
tensor is moved, never refitted: reshapes and reorderings between e3nn's flat weight layout and
this package's per-irrep matrices, and, in the product basis, the coupling path of mace-torch that
each of this package's paths equals (found by comparing the coupling tensors themselves). Runs in
this package's environment; the state dict arrives as tensors saved by the recorder in
mace-torch's environment. Only the model of the comparison is covered: the ``MACE`` model with
a plain first interaction and residual later ones (mace-torch's defaults). physicsml's MACE is
the same network split into other modules; ``physicsml_as_mace_torch`` renames its tensors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from physicsml_like.models.mace.coupling import coupling_basis
from physicsml_like.models.mace.interaction import InteractionBlock
from physicsml_like.models.mace.linear import ElementLinear, IrrepsLinear
from physicsml_like.models.mace.network import MACE
from physicsml_like.models.mace.product import ProductBasisBlock

__all__ = ["load_mace_torch_state", "physicsml_as_mace_torch"]


def _copy(target: torch.Tensor, value: torch.Tensor, name: str) -> None:
    if target.shape != value.shape:
        raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(value.to(target.dtype))


def _linear(ours: IrrepsLinear, flat: torch.Tensor, name: str) -> None:
    """``o3.Linear``: one ``[c_in, c_out]`` block per (input, output) pair, by input irrep; the
    input blocks are sorted, so the blocks of each output irrep are consecutive, in the row order
    (copy, channel) of this package's matrix."""
    start = 0
    for weight in ours.weights:
        _copy(weight, flat[start : start + weight.numel()].reshape(weight.shape), name)
        start += weight.numel()
    if start != flat.numel():
        raise ValueError(f"{name}: {flat.numel()} weights, this network has {start}")


def _element_linear(ours: ElementLinear, flat: torch.Tensor, name: str) -> None:
    """``o3.FullyConnectedTensorProduct(features, one-hot, out)``: ``[c_in, elements, c_out]``
    per irrep; this package's rows are (element, channel)."""
    start = 0
    elements = ours.num_elements
    for weight in ours.weights:
        rows, columns = weight.shape
        block = flat[start : start + rows * columns].reshape(rows // elements, elements, columns)
        _copy(weight, block.transpose(0, 1).reshape(rows, columns), name)
        start += rows * columns
    if start != flat.numel():
        raise ValueError(f"{name}: {flat.numel()} weights, this network has {start}")


def _interaction(ours: InteractionBlock, state: Mapping[str, torch.Tensor], prefix: str, paths_by_output: bool) -> None:
    _linear(ours.linear_up, state[prefix + "linear_up.weight"], prefix + "linear_up")
    product = ours.tensor_product
    # mace-torch orders the tensor-product paths by output irrep (stable); this package, like
    # physicsml, in the order they are found, by input
    order = sorted(range(product.num_paths), key=lambda k: product.path_irreps[k]) if paths_by_output else range(product.num_paths)
    position = {path: rank for rank, path in enumerate(order)}
    layers = list(ours.radial_mlp.weights)
    for index, weight in enumerate(layers):
        value = state[prefix + f"conv_tp_weights.layer{index}.weight"]
        if index == len(layers) - 1:
            c = product.channels
            value = torch.cat([value[:, position[k] * c : (position[k] + 1) * c] for k in range(product.num_paths)], dim=1)
        _copy(weight, value, prefix + f"conv_tp_weights.layer{index}")
    _linear(ours.linear, state[prefix + "linear.weight"], prefix + "linear")
    _element_linear(ours.skip, state[prefix + "skip_tp.weight"], prefix + "skip_tp")


def _path_signs(u_reference: torch.Tensor, order: int, irreps: str, irrep_out: str) -> list[tuple[int, float]]:
    """For each of mace-torch's coupling paths: this package's equal path and the sign between them."""
    ours = coupling_basis(irreps, order, irrep_out)
    reference = u_reference.to(torch.float64)
    if reference.dim() == order + 1:  # mace-torch drops the axis of a scalar output
        reference = reference.unsqueeze(0)
    mine = ours.reshape(-1, ours.shape[-1])
    theirs = reference.reshape(-1, reference.shape[-1])
    matches = []
    for k in range(theirs.shape[1]):
        column = theirs[:, k]
        cosines = mine.T @ column / (mine.norm(dim=0) * column.norm())
        j = int(cosines.abs().argmax())
        if abs(abs(float(cosines[j])) - 1.0) > 1e-5:
            raise ValueError(f"mace-torch's coupling path {k} ({irrep_out}, order {order}) matches none of this package's")
        matches.append((j, float(torch.sign(cosines[j]))))
    if sorted(j for j, _ in matches) != list(range(mine.shape[1])):
        raise ValueError(f"coupling paths ({irrep_out}, order {order}) do not pair one to one")
    return matches


def _product(ours: ProductBasisBlock, state: Mapping[str, torch.Tensor], prefix: str) -> None:
    contraction = ours.contraction
    coupling = " + ".join(str(ir) for _, ir in contraction.irreps_in)
    for index, ((_, ir), (_, weight_ids)) in enumerate(zip(contraction.irreps_out, contraction._outputs, strict=True)):
        base = prefix + f"symmetric_contractions.contractions.{index}."
        # mace-torch: weights_max for the highest order, then weights.0, weights.1, ... downwards
        by_order = {contraction.correlation: state[base + "weights_max"]}
        for j in range(contraction.correlation - 1):
            by_order[contraction.correlation - 1 - j] = state[base + f"weights.{j}"]
        for order, weight_id in zip(range(1, contraction.correlation + 1), weight_ids, strict=True):
            theirs = by_order[order]
            value = torch.zeros_like(theirs)
            for k, (j, sign) in enumerate(_path_signs(state[base + f"U_matrix_{order}"], order, coupling, str(ir))):
                value[:, j] = sign * theirs[:, k]
            _copy(contraction.weights[weight_id], value, base + f"order {order}")
    _linear(ours.linear, state[prefix + "linear.weight"], prefix + "linear")


def load_mace_torch_state(network: MACE, state: Mapping[str, torch.Tensor], paths_by_output: bool = True) -> None:
    """Copy mace-torch's weights into ``network`` (built with the same hyperparameters and
    elements); a tensor that does not fit raises ``ValueError`` naming it. ``paths_by_output``:
    the radial network's outputs are in mace-torch's order of the tensor-product paths (sorted
    by output irrep), not physicsml's (as found)."""
    elements = network.num_elements
    _copy(network.embedding.weights[0], state["node_embedding.linear.weight"].reshape(elements, -1), "node_embedding")
    for index, block in enumerate(network.interactions):
        _interaction(block, state, f"interactions.{index}.", paths_by_output)
    for index, block in enumerate(network.products):
        _product(block, state, f"products.{index}.")
    readouts = list(network.readouts)
    for index, readout in enumerate(readouts):
        prefix = f"readouts.{index}."
        if readout.scalar_out is None:
            _copy(readout.scalar_in, state[prefix + "linear.weight"].reshape(readout.scalar_in.shape), prefix + "linear")
        else:
            _copy(readout.scalar_in, state[prefix + "linear_1.weight"].reshape(readout.scalar_in.shape), prefix + "linear_1")
            _copy(readout.scalar_out, state[prefix + "linear_2.weight"].reshape(readout.scalar_out.shape), prefix + "linear_2")


_PHYSICSML_NAMES = [
    (r"mace\.node_embedding\.weight", r"node_embedding.linear.weight"),
    (r"mace\.interactions\.(\d+)\.linear_node_feats\.weight", r"interactions.\1.linear_up.weight"),
    (r"mace\.interactions\.(\d+)\.net_R_channels\.(layer\d+\.weight)", r"interactions.\1.conv_tp_weights.\2"),
    (r"mace\.interactions\.(\d+)\.linear\.weight", r"interactions.\1.linear.weight"),
    (r"mace\.interactions\.(\d+)\.mix_layer\.weight", r"interactions.\1.skip_tp.weight"),
    (r"mace\.node_updates\.(\d+)\.residual_connection_layer\.weight", r"interactions.\1.skip_tp.weight"),
    (r"mace\.messages\.(\d+)\.symmetric_contractions\.(contractions\.\d+)\.U_matrices\.(\d+)",
     r"products.\1.symmetric_contractions.\2.U_matrix_\3"),
    (r"mace\.messages\.(\d+)\.symmetric_contractions\.(contractions\.\d+\.weights.*)", r"products.\1.symmetric_contractions.\2"),
    (r"mace\.node_updates\.(\d+)\.linear\.weight", r"products.\1.linear.weight"),
    (r"graph_scalars_head\.readouts\.(\d+)\.weight", r"readouts.\1.linear.weight"),
    (r"graph_scalars_head\.readouts\.(\d+)\.(linear_[12]\.weight)", r"readouts.\1.\2"),
]
"""physicsml's tensor names (regular expressions) and mace-torch's for them."""


def physicsml_as_mace_torch(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """physicsml's ``PooledMACEModule`` state under mace-torch's names (tensors not renamed here,
    buffers of the scale and the radial basis, are left out).

    physicsml splits each of mace-torch's interactions in three: ``interactions`` (the linear
    before the tensor product, the radial network, the linear after it, and in the first layer
    the element mixing that mace-torch calls ``skip_tp``), ``messages`` (the symmetric
    contraction) and ``node_updates`` (the linear after the contraction and, from the second
    layer on, the element-dependent skip connection, mace-torch's residual ``skip_tp``).
    """
    renamed: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        for theirs, ours in _PHYSICSML_NAMES:
            if (match := re.fullmatch(theirs, name)) is not None:
                renamed[match.expand(ours)] = value
                break
    return renamed
