"""PaiNN hyperparameters."""

from __future__ import annotations

from pydantic import Field

from ...config.model import ModelConfig

__all__ = ["PaiNNModelConfig"]


class PaiNNModelConfig(ModelConfig):
    """Polarizable atom interaction neural network (Schütt, Unke and Gastegger 2021): scalar and
    vector features per atom, updated by message and update blocks. The cutoff is
    ``datamodule.cut_off``; filters carry a polynomial envelope that vanishes smoothly there.
    """

    num_features: int = Field(default=128, gt=0)
    """Channels of the scalar and of the vector features."""
    num_interactions: int = Field(default=3, ge=0)
    """Message + update blocks."""
    num_radial: int = Field(default=20, gt=0)
    """Bessel radial basis functions ``sin(n pi r / r_c) / r`` of the distance."""
    trainable_rbf: bool = False
    """Learn the Bessel frequencies."""
    envelope_p: int = Field(default=6, ge=2)
    """Exponent of the polynomial cutoff envelope (smoothness at the cutoff)."""
    shared_filters: bool = False
    """One radial filter network for every interaction instead of one each."""
    shared_interactions: bool = False
    """One set of message and update weights for every interaction (the layers are repeated)."""
    activation: str = "SiLU"
    """Activation of the scalar networks."""
