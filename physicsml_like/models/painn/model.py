"""The PaiNN family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import PaiNNModelConfig
from .network import build_painn

__all__ = ["PaiNNModel"]


@register_model("painn_model")
class PaiNNModel(PhysicsMLModel):
    """PaiNN: energies (forces and stress by autograd), node scalars, node vectors and dipoles.

    Examples
    --------
    >>> from physicsml_like import PaiNNModel
    >>> model = PaiNNModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces",
    ...                                "y_graph_vector": "dipole"},
    ...                    compute_forces=True, num_features=32, shared_filters=True)
    >>> model.config.num_layers
    3
    """

    config_class = PaiNNModelConfig
    build_network = staticmethod(build_painn)
