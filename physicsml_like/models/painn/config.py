"""PaiNN hyperparameters."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ...config.model import ModelConfig

__all__ = ["PaiNNModelConfig"]


class PaiNNModelConfig(ModelConfig):
    """Polarizable atom interaction neural network (Schütt, Unke and Gastegger 2021): scalar and
    vector features per atom, updated by message and update blocks. The cutoff is
    ``datamodule.cut_off``; filters carry a polynomial envelope that vanishes smoothly there.

    physicsml has no PaiNN; the options carry the names the other families give them.
    """

    renamed_fields: ClassVar[dict[str, str]] = {
        "num_interactions": "num_layers",
        "num_radial": "num_bessel",
        "trainable_rbf": "bessel_basis_trainable",
        "envelope_p": "num_polynomial_cutoff",
    }

    num_features: int = Field(default=128, gt=0)
    """Channels of the scalar and of the vector features."""
    num_layers: int = Field(default=3, ge=0)
    """Message + update blocks (formerly ``num_interactions``)."""
    num_bessel: int = Field(default=20, gt=0)
    """Bessel radial basis functions ``sin(n pi r / r_c) / r`` of the distance (formerly
    ``num_radial``)."""
    bessel_basis_trainable: bool = False
    """Learn the Bessel frequencies (formerly ``trainable_rbf``)."""
    num_polynomial_cutoff: int = Field(default=6, ge=2)
    """Exponent ``p`` of the polynomial cutoff envelope (smoothness at the cutoff; formerly
    ``envelope_p``)."""
    shared_filters: bool = False
    """One radial filter network for every interaction instead of one each."""
    shared_interactions: bool = False
    """One set of message and update weights for every interaction (the layers are repeated)."""
    activation: str = "SiLU"
    """Activation of the scalar networks."""
