"""The atomic environment vector's settings: their own module, since both the family config
and the published presets are built from them."""

from __future__ import annotations

from pydantic import Field

from ...config.base import StrictConfig

__all__ = ["AEVConfig"]


class AEVConfig(StrictConfig):
    """The atomic environment vector (AEV) of ANI: radial and angular symmetry functions.

    Radial terms ``0.25 exp(-eta_R (r - R_s)^2) f_c(r)`` per neighbour element; angular terms
    ``2 ((1 + cos(theta - theta_s)) / 2)^zeta exp(-eta_A ((r_j + r_k)/2 - R_s)^2) f_c(r_j) f_c(r_k)``
    per pair of neighbour elements. Shifts ``R_s`` are evenly spaced from the start value up to
    (excluding) the cutoff; sections ``theta_s`` are the centres of equal slices of ``[0, pi]``.
    The radial cutoff is the datamodule's ``cut_off``. Defaults are ANI-1x's.
    """

    angular_cutoff: float = Field(default=3.5, gt=0)
    """Cutoff of the angular terms in Å (at most the radial cutoff ``datamodule.cut_off``)."""
    radial_eta: float = Field(default=16.0, gt=0)
    """Width parameter ``eta_R`` of the radial Gaussians (1/Å²)."""
    radial_start: float = Field(default=0.9, ge=0)
    """First radial shift in Å."""
    num_radial_shifts: int = Field(default=16, gt=0)
    """Radial shifts ``R_s`` (terms per neighbour element)."""
    angular_eta: float = Field(default=8.0, gt=0)
    """Width parameter ``eta_A`` of the angular terms' radial Gaussians (1/Å²)."""
    angular_zeta: float = Field(default=32.0, gt=0)
    """Exponent ``zeta`` of the angular terms (larger: narrower in angle)."""
    angular_start: float = Field(default=0.9, ge=0)
    """First angular radial shift in Å."""
    num_angular_shifts: int = Field(default=4, gt=0)
    """Radial shifts of the angular terms."""
    num_angle_sections: int = Field(default=8, gt=0)
    """Angle sections ``theta_s`` of the angular terms."""

    def radial_length(self) -> int:
        """Radial terms per neighbour element."""
        return self.num_radial_shifts

    def angular_length(self) -> int:
        """Angular terms per pair of neighbour elements."""
        return self.num_angular_shifts * self.num_angle_sections

    def length(self, num_species: int) -> int:
        """AEV length for ``num_species`` elements."""
        pairs = num_species * (num_species + 1) // 2
        return num_species * self.radial_length() + pairs * self.angular_length()
