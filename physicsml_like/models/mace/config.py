"""MACE hyperparameters, named as in mace-torch so its users find their options."""

from __future__ import annotations

from typing import ClassVar, Literal

from e3nn import o3
from pydantic import Field, field_validator, model_validator

from ...config.model import ModelConfig
from ...nn.mlp import activation

__all__ = ["MACEModelConfig"]

InteractionKind = Literal["RealAgnosticInteractionBlock", "RealAgnosticResidualInteractionBlock"]


def _parse_irreps(text: str) -> o3.Irreps:
    try:
        return o3.Irreps(text)
    except (ValueError, AssertionError) as err:
        raise ValueError(f"{text!r} is not an irreps string such as '64x0e + 64x1o' ({err})") from None


class MACEModelConfig(ModelConfig):
    """MACE: higher-order equivariant message passing (Batatia et al. 2022, arXiv:2206.07697).

    Each layer builds an atomic basis from the neighbours (spherical harmonics of the edge
    directions, weighted by a radial MLP), raises it to symmetric powers up to ``correlation``
    (body order ``correlation + 1`` per layer) and reads out a per-atom energy contribution;
    the energy is the sum over layers and atoms. The defaults are mace-torch's ``MACE`` model
    (plain first interaction, residual ones after).
    """

    renamed_fields: ClassVar[dict[str, str]] = {"radial_activation": "radial_mlp_activation"}

    hidden_irreps: str = "128x0e + 128x1o"
    """Node features between layers, the same number of channels for every irrep
    (``"64x0e + 64x1o"``; ``"64x0e"`` for an invariant model). The last layer keeps only the
    scalars unless a vector output (dipole, node vectors) is predicted."""
    max_ell: int = Field(3, ge=0)
    """Highest degree of the spherical harmonics of the edge directions."""
    correlation: int | list[int] = 3
    """Body order minus one of each layer's product basis: one value for every layer, or one
    per layer."""
    num_interactions: int = Field(2, ge=1)
    """Message-passing layers."""
    mlp_irreps: str = "16x0e"
    """Hidden layer of the last layer's non-linear readout (scalars only)."""
    num_bessel: int = Field(8, gt=0)
    """Bessel radial basis functions of the distance."""
    num_polynomial_cutoff: int = Field(5, ge=1)
    """Exponent ``p`` of the polynomial envelope that takes radial features smoothly to zero at
    ``datamodule.cut_off``."""
    avg_num_neighbours: float | None = Field(None, gt=0)
    """Normalisation of the neighbour sums; from the training data when not given."""
    radial_mlp: list[int] = Field(default_factory=lambda: [64, 64, 64])
    """Hidden widths of the MLP that turns the radial basis into tensor-product weights."""
    radial_mlp_activation: str = "silu"
    """Activation of the radial MLP (NequIP's name; formerly ``radial_activation``)."""
    gate: str | None = "silu"
    """Activation of the non-linear readout (``None``: linear)."""
    interaction_first: InteractionKind = "RealAgnosticInteractionBlock"
    """The first layer's interaction: element-dependent weights on the message
    (``RealAgnosticInteractionBlock``) or an element-dependent skip connection
    (``RealAgnosticResidualInteractionBlock``)."""
    interaction: InteractionKind = "RealAgnosticResidualInteractionBlock"
    """The interaction of the later layers."""
    @field_validator("hidden_irreps")
    @classmethod
    def _hidden_irreps(cls, text: str) -> str:
        irreps = _parse_irreps(text)
        if len(irreps) == 0 or irreps.count("0e") == 0:
            raise ValueError(f"hidden_irreps needs scalar (0e) channels, got {text!r}")
        if len({mul for mul, _ in irreps}) != 1:
            raise ValueError(f"hidden_irreps must give every irrep the same number of channels, got {text!r}")
        return text

    @field_validator("mlp_irreps")
    @classmethod
    def _mlp_irreps(cls, text: str) -> str:
        irreps = _parse_irreps(text)
        if any(ir.l != 0 or ir.p != 1 for _, ir in irreps) or irreps.dim == 0:
            raise ValueError(f"mlp_irreps must be scalars such as '16x0e', got {text!r}")
        return text

    @field_validator("radial_mlp_activation", "gate")
    @classmethod
    def _known_activation(cls, name: str | None) -> str | None:
        if name is not None:
            activation(name)
        return name

    @field_validator("radial_mlp")
    @classmethod
    def _positive_widths(cls, widths: list[int]) -> list[int]:
        if any(w <= 0 for w in widths):
            raise ValueError(f"radial_mlp widths must be positive, got {widths}")
        return widths

    @model_validator(mode="after")
    def _correlation_per_layer(self) -> MACEModelConfig:
        values = self.correlation if isinstance(self.correlation, list) else [self.correlation]
        if isinstance(self.correlation, list) and len(values) != self.num_interactions:
            raise ValueError(
                f"correlation lists {len(values)} values but num_interactions is {self.num_interactions}"
            )
        if any(v < 1 for v in values):
            raise ValueError(f"correlation must be at least 1, got {self.correlation}")
        return self

    def correlations(self) -> list[int]:
        """The correlation order of each layer."""
        if isinstance(self.correlation, list):
            return list(self.correlation)
        return [self.correlation] * self.num_interactions
