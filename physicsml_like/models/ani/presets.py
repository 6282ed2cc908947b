"""The published ANI-1x and ANI-2x atomic environment vectors and element networks.

Numbers from Smith, Isayev and Roitberg, Chem. Sci. 8, 3192 (2017) and Smith et al., J. Chem.
Phys. 148, 241733 (2018) for ANI-1x, and Devereux et al., J. Chem. Theory Comput. 16, 4192
(2020) for ANI-2x. Every shift grid is evenly spaced from a start value up to (and excluding)
its cutoff, and the angle sections sit at the centres of equal slices of ``[0, pi]``, so the
AEV of each preset is fully described by the few numbers below.
"""

from __future__ import annotations

from dataclasses import dataclass

from .aev_config import AEVConfig

__all__ = ["PRESETS", "ANIPreset"]


@dataclass(frozen=True)
class ANIPreset:
    """One published ANI model: its elements (in AEV order), radial cutoff, AEV, networks."""

    elements: tuple[str, ...]
    """Element symbols in the order of the AEV's species blocks."""
    radial_cutoff: float
    """Radial cutoff in Å (the datamodule's ``cut_off``)."""
    aev: AEVConfig
    """Angular cutoff and the shift, width and section grids."""
    hidden_sizes: dict[str, tuple[int, ...]]
    """Hidden layer widths of each element's network."""

    def aev_length(self) -> int:
        """Length of the AEV: radial blocks per element plus angular blocks per element pair."""
        return self.aev.length(len(self.elements))


PRESETS: dict[str, ANIPreset] = {
    "ani1": ANIPreset(
        elements=("H", "C", "N", "O"),
        radial_cutoff=5.2,
        aev=AEVConfig(
            angular_cutoff=3.5,
            radial_eta=16.0,
            radial_start=0.9,
            num_radial_shifts=16,
            angular_eta=8.0,
            angular_zeta=32.0,
            angular_start=0.9,
            num_angular_shifts=4,
            num_angle_sections=8,
        ),
        hidden_sizes={"H": (160, 128, 96), "C": (144, 112, 96), "N": (128, 112, 96), "O": (128, 112, 96)},
    ),
    "ani2": ANIPreset(
        elements=("H", "C", "N", "O", "S", "F", "Cl"),
        radial_cutoff=5.1,
        aev=AEVConfig(
            angular_cutoff=3.5,
            radial_eta=19.7,
            radial_start=0.8,
            num_radial_shifts=16,
            angular_eta=12.5,
            angular_zeta=14.1,
            angular_start=0.8,
            num_angular_shifts=8,
            num_angle_sections=4,
        ),
        hidden_sizes={
            "H": (256, 192, 160),
            "C": (224, 192, 160),
            "N": (192, 160, 128),
            "O": (192, 160, 128),
            "S": (160, 128, 96),
            "F": (160, 128, 96),
            "Cl": (160, 128, 96),
        },
    ),
}
