"""The ANI family's user-facing model."""

from __future__ import annotations

from ...training.registry import register_model
from ...training.wrapper import PhysicsMLModel
from .config import ANIModelConfig
from .network import build_ani

__all__ = ["ANIModel"]


@register_model("ani_model")
class ANIModel(PhysicsMLModel):
    """ANI-1x/2x style potential: energies (forces and stress by autograd) and per-atom scalars.

    Examples
    --------
    >>> from physicsml_like import ANIModel
    >>> model = ANIModel(datamodule={"y_graph_scalars": ["energy"], "y_node_vector": "forces"},
    ...                  compute_forces=True, which_ani="ani2")
    >>> model.config.datamodule.cut_off, model.config.datamodule.elements
    (5.1, ['H', 'C', 'N', 'O', 'S', 'F', 'Cl'])
    """

    config_class = ANIModelConfig
    build_network = staticmethod(build_ani)
