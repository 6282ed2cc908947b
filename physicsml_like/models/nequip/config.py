"""NequIP hyperparameters (physicsml's names and defaults, plus the radial network and
activation choices of the reference implementation)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

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

    # Options of other NequIP implementations (SevenNet); the defaults keep the model above.
    features_per_ell: list[int] | None = None
    """Channels of each rotation order ``l = 0..max_ell`` of the hidden features (SevenNet-0:
    ``[128, 64, 32]``); default ``num_features`` for every ``l``. Its first entry must equal
    ``num_features`` (the width of the scalar features and of the embedding)."""
    envelope: Literal["polynomial", "xplor"] = "polynomial"
    """Cutoff envelope: the polynomial of exponent ``num_polynomial_cutoff``, or the XPLOR
    switching function from ``envelope_on`` to the cutoff (SevenNet-0)."""
    envelope_on: float | None = Field(None, ge=0)
    """Where the XPLOR envelope starts to fall (Angstrom); needed with ``envelope="xplor"``."""
    bessel_prefactor: float | None = Field(None, gt=0)
    """Constant in front of ``sin(n pi r / r_c) / r``; default ``sqrt(2 / r_c)`` (SevenNet: ``2 / r_c``)."""
    radial_envelope_on_hidden: bool = True
    """Also multiply the radial network's last hidden layer by the envelope (so the weights
    vanish at the cutoff whatever the activation); ``False`` applies it to the radial basis
    only, as SevenNet does."""
    normalize_edge_sh: bool = True
    """Spherical harmonics of the unit edge vectors; ``False`` takes them of the raw vectors
    (``r^l Y_l``), as SevenNet checkpoints before version 0.10 do."""
    self_connection_type: Literal["element", "linear"] = "element"
    """With ``self_connection``: a per-element linear map of the block input (a tensor product
    with the one-hot, NequIP), or one linear map shared by all elements (SevenNet-0's
    ``"linear"``)."""

    @model_validator(mode="after")
    def _options_fit(self) -> NequIPModelConfig:
        if self.features_per_ell is not None:
            if len(self.features_per_ell) != self.max_ell + 1:
                raise ValueError(f"features_per_ell needs one entry per l = 0..max_ell ({self.max_ell + 1}), got {self.features_per_ell}")
            if self.features_per_ell[0] != self.num_features:
                raise ValueError(f"features_per_ell[0] ({self.features_per_ell[0]}) must equal num_features ({self.num_features})")
            if min(self.features_per_ell) <= 0:
                raise ValueError(f"features_per_ell entries must be positive, got {self.features_per_ell}")
        if self.envelope == "xplor" and (self.envelope_on is None or self.envelope_on >= self.datamodule.cut_off):
            raise ValueError(f"envelope='xplor' needs envelope_on below datamodule.cut_off ({self.datamodule.cut_off}), got {self.envelope_on}")
        return self
    @field_validator("nonlinearity_scalars", "nonlinearity_gates")
    @classmethod
    def _both_parities(cls, value: dict[str, str]) -> dict[str, str]:
        if set(value) != {"e", "o"}:
            raise ValueError(f"give one activation for each parity, keys 'e' and 'o' (got keys {sorted(value)})")
        return value
