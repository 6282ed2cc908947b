"""The MACE family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import MACEModelConfig
from .network import build_mace

__all__ = ["MACEModel"]


@register_model("mace_model")
class MACEModel(PhysicsMLModel):
    """MACE: energies, forces, stress, node scalars (charges), node vectors and dipoles.

    Examples
    --------
    >>> from physicsml_like import MACEModel
    >>> model = MACEModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                   compute_forces=True, hidden_irreps="32x0e + 32x1o", max_ell=2)
    >>> model.config.correlation
    3
    """

    config_class = MACEModelConfig
    build_network = staticmethod(build_mace)
