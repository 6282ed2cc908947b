"""The TensorNet family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import TensorNetModelConfig
from .network import build_tensornet

__all__ = ["TensorNetModel"]


@register_model("tensornet_model")
class TensorNetModel(PhysicsMLModel):
    """TensorNet: energies (forces and stress by autograd) and per-atom scalars.

    Examples
    --------
    >>> from physicsml_like import TensorNetModel
    >>> model = TensorNetModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                        compute_forces=True, num_features=32, num_interaction_layers=2)
    >>> model.config.equivariance
    'O(3)'
    """

    config_class = TensorNetModelConfig
    build_network = staticmethod(build_tensornet)
