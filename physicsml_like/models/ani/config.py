"""ANI hyperparameters: a published preset (``ani1``, ``ani2``) or your own AEV, elements and
network sizes."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from ...config.base import deep_merge
from ...config.model import ModelConfig
from .aev_config import AEVConfig
from .presets import PRESETS

__all__ = ["AEVConfig", "ANIModelConfig"]


class ANIModelConfig(ModelConfig):
    """ANI (Smith, Isayev and Roitberg 2017; ANI-2x: Devereux et al. 2020): one network per
    element maps each atom's AEV to its energy contribution.

    With a preset (``which_ani``, physicsml's name) the AEV, the elements (in published order, as
    ``datamodule.elements``) and the radial cutoff (as ``datamodule.cut_off``) are the published
    ones; data with another element is rejected, naming the element and the frame. Without a
    preset, ``aev`` and ``hidden_sizes`` describe the model and the elements come from the data
    or ``datamodule.elements``.
    """

    renamed_fields: ClassVar[dict[str, str]] = {"preset": "which_ani"}

    which_ani: Literal["ani1", "ani2"] | None = "ani1"
    """The published preset: ``"ani1"``: ANI-1x (H, C, N, O; AEV length 384, radial cutoff
    5.2 Å). ``"ani2"``: ANI-2x (H, C, N, O, S, F, Cl; AEV length 1008, radial cutoff 5.1 Å).
    ``None``: your own ``aev``. (Formerly ``preset``.)"""
    aev: AEVConfig | None = None
    """AEV parameters when ``which_ani`` is ``None`` (unset: ANI-1x's values with your cutoff and
    elements). A preset fixes the AEV, so setting both is an error."""
    hidden_sizes: list[int] | dict[str, list[int]] | None = None
    """Hidden layer widths of the element networks: one list for every element, or a list per
    element symbol (every element must have one). Unset: the preset's published sizes, or
    ``[160, 128, 96]`` without a preset."""
    activation: str = "CELU"
    """Activation between the layers of the element networks (ANI uses CELU)."""
    celu_alpha: float = Field(default=0.1, gt=0)
    """``alpha`` of the CELU activation (0.1 in ANI); unused for other activations."""
    # the datamodule fields a preset fills in
    _PRESET_FIELDS = ("cut_off", "elements")

    def updated(self, overrides: dict[str, Any] | None) -> Self:
        """A validated copy with ``overrides`` merged in. When the preset changes, the cutoff and
        elements the old preset filled in give way to the new preset's (or, without a preset, to
        the defaults); values given in ``overrides`` are kept."""
        overrides = self._overrides_with_new_names(overrides or {})
        new_preset = overrides.get("which_ani", self.which_ani)
        if self.which_ani is None or new_preset == self.which_ani:
            return super().updated(overrides)

        old = PRESETS[self.which_ani]
        filled_in = {"cut_off": old.radial_cutoff, "elements": list(old.elements)}
        merged = deep_merge(self.model_dump(), overrides)
        given = overrides.get("datamodule") or {}
        for key in self._PRESET_FIELDS:
            if key not in given and merged["datamodule"].get(key) == filled_in[key]:
                del merged["datamodule"][key]
        return type(self)(**merged)

    @model_validator(mode="after")
    def _resolve_preset(self) -> ANIModelConfig:
        from ase.data import chemical_symbols

        dm = self.datamodule
        given = None if dm.elements is None else [
            chemical_symbols[e] if isinstance(e, int) else e for e in dm.elements
        ]
        if self.which_ani is not None:
            elements: list[str] | None = self._apply_preset(given)
        else:
            aev = self.aev or AEVConfig()
            if aev.angular_cutoff > dm.cut_off:
                raise ValueError(
                    f"aev.angular_cutoff={aev.angular_cutoff} exceeds the radial cutoff datamodule.cut_off={dm.cut_off}"
                )
            elements = given
        self._check_hidden_sizes(elements)
        return self

    def _apply_preset(self, given: list[str] | None) -> list[str]:
        """Fill ``datamodule.cut_off`` and ``elements`` in from the preset, after checking that
        nothing the user gave contradicts it; the preset's elements."""

        dm, name = self.datamodule, self.which_ani
        assert name is not None
        preset = PRESETS[name]
        if self.aev is not None:
            raise ValueError(f"aev: preset {name!r} (which_ani) fixes the AEV; set which_ani to None to give your own")
        if "cut_off" in dm.model_fields_set and dm.cut_off != preset.radial_cutoff:
            raise ValueError(
                f"datamodule.cut_off={dm.cut_off} differs from the radial cutoff "
                f"{preset.radial_cutoff} of preset {name!r} (which_ani); leave cut_off unset, or set "
                "which_ani to None and give aev"
            )
        if dm.num_elements is not None:
            raise ValueError(f"datamodule.num_elements: preset {name!r} (which_ani) fixes the elements {list(preset.elements)}")
        if given is not None and given != list(preset.elements):
            raise ValueError(
                f"datamodule.elements {given} differ from the elements of preset {name!r} "
                f"{list(preset.elements)} (in that order); leave elements unset, or set which_ani to None"
            )
        dm.cut_off = preset.radial_cutoff
        dm.elements = list(preset.elements)
        return list(preset.elements)

    def _check_hidden_sizes(self, elements: list[str] | None) -> None:
        widths = self.hidden_sizes.values() if isinstance(self.hidden_sizes, dict) else [self.hidden_sizes or []]
        if any(w <= 0 for sizes in widths for w in sizes):
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        if isinstance(self.hidden_sizes, dict):
            if elements is None:
                raise ValueError(
                    "hidden_sizes per element needs the elements: set datamodule.elements (or which_ani)"
                )
            if set(self.hidden_sizes) != set(elements):
                raise ValueError(
                    f"hidden_sizes has entries for {sorted(self.hidden_sizes)}; it needs exactly the "
                    f"elements {elements}"
                )
