"""physicsml's MACE state dict under mace-torch's names, and the loader of mace-torch's weights
into this package's MACE network.

Used by ``benchmarks/reference_replay.py`` to start two codes from the same weights. The
mapping of mace-torch's tensors lives in the package (``physicsml_like.pretrained.mace_torch``,
which ``from_mace_torch`` uses); physicsml's MACE is the same network split into other modules,
and ``physicsml_as_mace_torch`` renames its tensors so that the same mapping applies (with
``paths_by_output=False``: physicsml keeps the tensor-product paths in the order found).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from physicsml_like.pretrained.mace_torch import load_mace_torch_state

__all__ = ["load_mace_torch_state", "physicsml_as_mace_torch"]


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
