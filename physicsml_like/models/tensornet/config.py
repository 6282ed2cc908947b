"""TensorNet hyperparameters."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ...config.model import ModelConfig

__all__ = ["TensorNetModelConfig"]


class TensorNetModelConfig(ModelConfig):
    """TensorNet (Simeon and De Fabritiis 2023): O(3)-equivariant Cartesian rank-2 tensor
    features, each split into its scalar (trace), skew-symmetric (vector) and symmetric traceless
    parts. The cutoff is ``datamodule.cut_off``; every radial input carries a polynomial envelope
    that vanishes smoothly there.

    Names are physicsml's; the options it lacks carry the names the other families give them.
    """

    renamed_fields: ClassVar[dict[str, str]] = {
        "num_layers": "num_interaction_layers",
        "trainable_rbf": "bessel_basis_trainable",
        "envelope_p": "num_polynomial_cutoff",
    }

    num_features: int = Field(default=128, gt=0)
    """Channels of the tensor features (each channel a 3x3 tensor per atom)."""
    num_radial: int = Field(default=32, gt=0)
    """Radial basis functions of the distance."""
    num_interaction_layers: int = Field(default=2, ge=0)
    """Interaction layers after the embedding (formerly ``num_layers``)."""
    radial_basis: Literal["bessel", "gaussian"] = "gaussian"
    """Radial basis: Gaussians on an even grid (close to TensorNet's exponential-normal basis)
    or Bessel functions."""
    bessel_basis_trainable: bool = False
    """Learn the Bessel frequencies (``radial_basis="bessel"`` only; formerly ``trainable_rbf``)."""
    num_polynomial_cutoff: int = Field(default=6, ge=2)
    """Exponent ``p`` of the polynomial cutoff envelope (smoothness at the cutoff; formerly
    ``envelope_p``)."""
    activation: str = "SiLU"
    """Activation of the scalar networks."""
    equivariance: Literal["O(3)", "SO(3)"] = "O(3)"
    """``"O(3)"``: tensor products symmetrised (``Y M + M Y``), energies invariant under
    reflections too; ``"SO(3)"``: ``2 Y M``, rotations only."""
