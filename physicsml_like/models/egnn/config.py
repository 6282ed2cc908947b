"""EGNN hyperparameters (physicsml's options plus a smooth cutoff on every radial input)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ...config.model import ModelConfig

__all__ = ["EGNNModelConfig"]


class EGNNModelConfig(ModelConfig):
    """E(n)-equivariant graph network (Satorras, Hoogeboom and Welling 2021).

    Every message is multiplied by a polynomial envelope of the distance that vanishes smoothly
    at ``datamodule.cut_off``, so energies are continuous at the cutoff and forces learnable.

    Names are physicsml's; the options it lacks carry the names the other families give them.
    """

    renamed_fields: ClassVar[dict[str, str]] = {
        "trainable_rbf": "bessel_basis_trainable",
        "envelope_p": "num_polynomial_cutoff",
    }

    c_hidden: int = Field(128, gt=0)
    """Width of node features and messages."""
    num_layers: int = Field(4, gt=0)
    """Message-passing layers."""
    num_layers_phi: int = Field(2, gt=0)
    """Linear layers in each message and update network."""
    num_layers_pooling: int = Field(2, gt=0)
    """Linear layers in the output heads."""
    num_rbf: int = Field(8, ge=0)
    """Bessel radial basis functions of the distance (0: squared distance only)."""
    bessel_basis_trainable: bool = False
    """Learn the Bessel frequencies (formerly ``trainable_rbf``)."""
    num_polynomial_cutoff: int = Field(6, ge=2)
    """Exponent ``p`` of the polynomial cutoff envelope (smoothness at the cutoff; formerly
    ``envelope_p``)."""
    attention: bool = False
    """Gate each message with a learned weight in (0, 1) (Satorras et al.'s edge inference)."""
    modify_coords: bool = False
    """Update coordinates in each layer (equivariantly) as in the EGNN paper."""
    jitter: float | None = Field(None, ge=0)
    """Gaussian noise (Å) added to positions during training only (a regulariser for property
    models; keep it off when fitting forces)."""
    pool_from: Literal["nodes", "nodes_edges", "edges"] = "nodes"
    """What is pooled for graph scalars: node features, messages, or both."""
    dropout: float | None = Field(None, ge=0, lt=1)
    """Dropout in the hidden layers of every MLP."""
    mlp_activation: str | None = "SiLU"
    """Activation inside MLPs."""
    mlp_output_activation: str | None = None
    """Activation after the last layer of the message and update MLPs."""
    output_activation: str | None = None
    """Activation on the final outputs (e.g. ``Softplus`` for positive targets)."""
    residual: bool = True
    """Residual node updates ``h + phi_h(h, m)``."""
