"""Pretrained models of other codes, converted exactly into this package's families.

:func:`load_pretrained` is the one entry point: a name of a known model or the path of a model
file gives an ordinary model of ours (``predict``, ``to_ase_calculator``, ``save``, ``train`` to
fine-tune). Each converter lives in its own module: :mod:`.sevennet` (SevenNet checkpoints into
NequIP) and :mod:`.mace_torch` (mace-torch models into MACE, :func:`from_mace_torch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConversionError
from .mace_torch import from_mace_torch
from .sevennet import SHIPPED_SEVENNET, from_sevennet

__all__ = ["ConversionError", "available_pretrained", "from_mace_torch", "from_sevennet", "load_pretrained"]


def available_pretrained() -> list[str]:
    """Names :func:`load_pretrained` knows."""
    return sorted(SHIPPED_SEVENNET)


def _is_mace_torch(path: Path) -> bool:
    """A mace-torch ``.model`` file or a folder (or file) written by its export script."""
    return path.suffix == ".model" or (path / "mace_torch.json").exists() or path.name in ("mace_torch.json", "state.pt")


def load_pretrained(name_or_path: str | Path, **config_overrides: Any) -> Any:
    """A pretrained model by name (see :func:`available_pretrained`) or from a model file.

    Parameters
    ----------
    name_or_path: ``"sevennet-0"`` (SevenNet-0, 11 Jul 2024), ``"sevennet-0-22may2024"``,
        ``"sevennet-l3i5"``, ... (shipped in the ``sevenn`` wheel), the path of a SevenNet
        checkpoint (``.pth``; converting it needs only torch), or a mace-torch model (a ``.model``
        file or the folder its export wrote; see :func:`from_mace_torch`).
    **config_overrides: passed to the converter: ``modal=`` of a multi-fidelity model,
        ``model_dtype="float64"``, and config fields such as ``trainer={...}``.

    Raises
    ------
    ConversionError: an unknown name (the message lists the known ones), a file that is not a
        model of a supported code, or an architecture option without a counterpart here.

    Examples
    --------
    >>> "sevennet-0" in available_pretrained()
    True
    """
    key = str(name_or_path)
    if key.lower() in SHIPPED_SEVENNET:
        return from_sevennet(key.lower(), **config_overrides)
    path = Path(key)
    if not path.exists():
        raise ConversionError(key, f"no such pretrained model or file; known names: {', '.join(available_pretrained())}")
    if _is_mace_torch(path):
        return from_mace_torch(path, **config_overrides)
    return from_sevennet(path, **config_overrides)
