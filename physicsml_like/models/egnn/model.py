"""The EGNN family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import EGNNModelConfig
from .network import build_egnn

__all__ = ["EGNNModel"]


@register_model("egnn_model")
class EGNNModel(PhysicsMLModel):
    """EGNN with a smooth cutoff: energies, forces, stress, node/edge/graph targets.

    Examples
    --------
    >>> from physicsml_like import EGNNModel
    >>> model = EGNNModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                   compute_forces=True, c_hidden=32, num_layers=2)
    >>> model.config.c_hidden
    32
    """

    config_class = EGNNModelConfig
    build_network = staticmethod(build_egnn)
