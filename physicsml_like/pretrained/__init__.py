"""Converters of other codes' models into this package's families."""

from .mace_torch import from_mace_torch

__all__ = ["from_mace_torch"]
