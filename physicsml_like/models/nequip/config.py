"""NequIP hyperparameters (physicsml's names and defaults, plus the radial network and
activation choices of the reference implementation)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ...config.model import ModelConfig

__all__ = ["NequIPModelConfig"]


class NequIPModelConfig(ModelConfig):
    """E(3)-equivariant message passing with gated nonlinearities (Batzner et al. 2022).

    Node features carry ``num_features`` channels of every irrep up to ``max_ell``; each layer
    convolves them with the spherical harmonics of the edges, weighted by a radial network of a
    Bessel basis times a polynomial envelope that vanishes smoothly at ``datamodule.cut_off``.
    """

    num_layers: int = Field(4, gt=0)
    """Interaction blocks."""
    num_features: int = Field(32, gt=0)
    """Channels of every irrep of the hidden features (``32`` gives ``32x0e + 32x1o + ...``)."""
    max_ell: int = Field(2, ge=0)
    """Highest rotation order of the spherical harmonics and of the hidden features."""
    parity: bool = True
    """Carry both parities of each ``l`` (E(3) equivariance, mirror images distinguished only
    through odd features); ``False`` keeps even irreps only (SE(3) equivariance)."""
    num_bessel: int = Field(8, gt=0)
    """Bessel functions of the radial basis."""
    bessel_basis_trainable: bool = True
    """Learn the Bessel frequencies."""
    num_polynomial_cutoff: int = Field(6, ge=2)
    """Exponent ``p`` of the polynomial envelope (smoothness at the cutoff)."""
    radial_mlp: list[int] = Field(default_factory=lambda: [64, 64])
    """Hidden widths of the radial network that gives each edge its tensor-product weights."""
    radial_mlp_activation: str = "SiLU"
    """Activation of the radial network."""
    nonlinearity_scalars: dict[str, str] = Field(default_factory=lambda: {"e": "SiLU", "o": "tanh"})
    """Activation of the even (``e``) and odd (``o``) scalar features; the odd one must be an odd
    or even function (``tanh``, ``abs``) to respect parity."""
    nonlinearity_gates: dict[str, str] = Field(default_factory=lambda: {"e": "SiLU", "o": "tanh"})
    """Activation of the gate scalars that multiply the ``l > 0`` features, by gate parity."""
    self_connection: bool = True
    """Add a per-element linear map of each block's input (a tensor product with the one-hot)."""
    resnet: bool = True
    """Residual update where a block's output irreps are among its input irreps."""
    avg_num_neighbours: float | None = Field(None, gt=0)
    """Normaliser of the neighbour sums (divided by its square root); default: the training
    data's mean number of neighbours."""
    readout_features: int = Field(16, gt=0)
    """Width of the scalar (and vector) layer between the last block and each output."""
    @field_validator("nonlinearity_scalars", "nonlinearity_gates")
    @classmethod
    def _both_parities(cls, value: dict[str, str]) -> dict[str, str]:
        if set(value) != {"e", "o"}:
            raise ValueError(f"give one activation for each parity, keys 'e' and 'o' (got keys {sorted(value)})")
        return value
