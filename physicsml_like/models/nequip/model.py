"""The NequIP family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import NequIPModelConfig
from .network import build_nequip

__all__ = ["NequIPModel"]


@register_model("nequip_model")
class NequIPModel(PhysicsMLModel):
    """NequIP: energies, forces, stress, node scalars (e.g. charges) and dipoles.

    Examples
    --------
    >>> from physicsml_like.models import NequIPModel
    >>> model = NequIPModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                     compute_forces=True, num_features=16, num_layers=2)
    >>> model.config.max_ell
    2
    """

    config_class = NequIPModelConfig
    build_network = staticmethod(build_nequip)
