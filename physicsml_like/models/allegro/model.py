"""The Allegro family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import AllegroModelConfig
from .network import build_allegro

__all__ = ["AllegroModel"]


@register_model("allegro_model")
class AllegroModel(PhysicsMLModel):
    """Allegro: strictly local energies, forces, stress, node scalars (e.g. charges) and dipoles.

    Examples
    --------
    >>> from physicsml_like.models import AllegroModel
    >>> model = AllegroModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                      compute_forces=True, env_embed_multiplicity=8, per_layer_cutoffs=[5.0, 4.5, 4.0])
    >>> model.config.per_layer_cutoffs
    [5.0, 4.5, 4.0]
    """

    config_class = AllegroModelConfig
    build_network = staticmethod(build_allegro)
