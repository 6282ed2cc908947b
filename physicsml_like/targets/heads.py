"""The heads a network must build for a model's targets."""

from __future__ import annotations

from ..config.model import ModelConfig
from ..data.graphs import ElementMapping
from ..data.molecules import BOND_FEATURE_NAMES, atom_feature_size
from ..nn.graph import OutputSpec

__all__ = ["output_spec"]

_VECTOR_DIM = 3


def output_spec(config: ModelConfig, mapping: ElementMapping, num_graph_attrs: int) -> OutputSpec:
    """Head widths from the targets (stacked scalars one column each, plus one per variance;
    vectors three wide) and the network's input widths."""
    widths: dict[str, int] = {}
    for target in config.targets:
        if target.head is None:
            continue  # a derivative of the energy
        if target.stacked:
            widths[target.head] = widths.get(target.head, 0) + 1 + target.has_variance
        else:
            widths[target.head] = _VECTOR_DIM
    dm = config.datamodule
    return OutputSpec(
        num_elements=mapping.size,
        num_node_features=mapping.size + atom_feature_size(dm.atom_features or []),
        num_edge_features=len(BOND_FEATURE_NAMES) if dm.bond_features else 0,
        num_graph_attrs=num_graph_attrs,
        **widths,
    )
