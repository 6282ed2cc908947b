"""Allegro hyperparameters (the names of physicsml's Allegro config, with defaults sized for CPU
training)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from ...config.model import ModelConfig

__all__ = ["AllegroModelConfig"]


class AllegroModelConfig(ModelConfig):
    """Strictly local equivariant pair model (Musaelian et al. 2023).

    Every ordered pair of atoms within the cutoff carries a scalar latent and equivariant tensor
    features; each layer couples the pair's tensors with its centre's environment (a weighted sum
    of the neighbours' spherical harmonics) and feeds the invariant results back into the latent.
    Nothing is passed between atoms beyond the cutoff. The energy is a sum of per-pair energies.

    The defaults are smaller than Allegro's published ones (two-body ``[128, 256, 512, 1024]``,
    latent ``[1024, 1024, 1024]``) so that training is practical on a CPU; set them for a GPU.
    """

    renamed_fields: ClassVar[dict[str, str]] = {
        "l_max": "max_ell",
        "num_tensor_features": "env_embed_multiplicity",
        "two_body_latent_mlp": "two_body_latent_mlp_latent_dimensions",
        "latent_mlp": "latent_mlp_latent_dimensions",
        "env_embed_mlp": "env_embed_mlp_latent_dimensions",
        "edge_eng_mlp": "mlp_latent_dimensions",
        "latent_activation": "activation",
    }

    num_layers: int = Field(2, gt=0)
    """Tensor-product layers."""
    max_ell: int = Field(2, ge=1)
    """Highest rotation order of the spherical harmonics and of the pair tensors (formerly
    ``l_max``)."""
    parity: bool = True
    """Carry both parities of each ``l`` (E(3)); ``False`` keeps even irreps only (SE(3))."""
    env_embed_multiplicity: int = Field(32, gt=0)
    """Channels of every irrep of the pair tensors and environment embeddings (formerly
    ``num_tensor_features``)."""
    two_body_latent_mlp_latent_dimensions: list[int] = Field(default_factory=lambda: [128, 256], min_length=1)
    """Layer widths of the MLP from the two elements and the radial basis to the first latent;
    the last width is the latent size (formerly ``two_body_latent_mlp``)."""
    latent_mlp_latent_dimensions: list[int] = Field(default_factory=lambda: [256], min_length=1)
    """Layer widths of the MLP that updates the latent after each tensor product (the last must
    equal the latent size; formerly ``latent_mlp``)."""
    env_embed_mlp_latent_dimensions: list[int] = Field(default_factory=list)
    """Hidden widths of the MLP from the latent to the environment weights (linear when empty;
    formerly ``env_embed_mlp``)."""
    mlp_latent_dimensions: list[int] = Field(default_factory=lambda: [128])
    """Hidden widths of the readout MLP from the final latent to each pair's energy (and to the
    pair scalars of other outputs; formerly ``edge_eng_mlp``)."""
    activation: str = "SiLU"
    """Activation of every MLP (the name PaiNN, TensorNet and ANI give it; formerly
    ``latent_activation``)."""
    latent_resnet: bool = True
    """Residual latent updates ``(x + c * f(x)) / sqrt(1 + c^2)``."""
    latent_resnet_update_ratios: list[float] | None = None
    """Initial ``c`` of each layer's residual update, in (0, 1) (default 0.5 each)."""
    latent_resnet_update_ratios_learnable: bool = False
    """Learn the residual update ratios."""
    num_bessel: int = Field(8, gt=0)
    """Bessel functions of the radial basis."""
    bessel_basis_trainable: bool = True
    """Learn the Bessel frequencies."""
    num_polynomial_cutoff: int = Field(6, ge=2)
    """Exponent ``p`` of the polynomial envelopes."""
    avg_num_neighbours: float | None = Field(None, gt=0)
    """Normaliser of the neighbour sums (divided by its square root); default: the training
    data's mean number of neighbours."""
    per_layer_cutoffs: list[float] | None = None
    """``num_layers + 1`` cutoffs in Å, each ``<= datamodule.cut_off``: the first for the two-body
    latent, then one per layer. A pair beyond a layer's cutoff contributes nothing to that layer
    (its envelope vanishes smoothly there); the last one bounds the pair energies."""
    @model_validator(mode="after")
    def _consistent_sizes(self) -> AllegroModelConfig:
        latent = self.two_body_latent_mlp_latent_dimensions[-1]
        if self.latent_mlp_latent_dimensions[-1] != latent:
            raise ValueError(
                "latent_mlp_latent_dimensions must end with the latent size "
                f"two_body_latent_mlp_latent_dimensions[-1]={latent}, "
                f"got latent_mlp_latent_dimensions={self.latent_mlp_latent_dimensions}"
            )
        if self.per_layer_cutoffs is not None:
            cutoffs = self.per_layer_cutoffs
            if len(cutoffs) != self.num_layers + 1:
                raise ValueError(
                    f"per_layer_cutoffs needs num_layers + 1 = {self.num_layers + 1} entries (two-body, then each "
                    f"layer), got {len(cutoffs)}"
                )
            bad = [c for c in cutoffs if not 0 < c <= self.datamodule.cut_off]
            if bad:
                raise ValueError(f"per_layer_cutoffs must lie in (0, datamodule.cut_off={self.datamodule.cut_off}], got {bad}")
        ratios = self.latent_resnet_update_ratios
        if ratios is not None:
            if len(ratios) != self.num_layers:
                raise ValueError(f"latent_resnet_update_ratios needs num_layers = {self.num_layers} entries, got {len(ratios)}")
            if any(not 0 < r < 1 for r in ratios):
                raise ValueError(f"latent_resnet_update_ratios must lie in (0, 1), got {ratios}")
        return self
