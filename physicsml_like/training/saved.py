"""Reading saved model folders and checkpoints: refuse what is damaged, say which file and field.

A saved model is four files; ``metadata.json`` records the sha256 of the other three, so a
flipped byte in the weights is found on load instead of silently changing predictions. Models
saved before checksums were written load unverified (with a note in the log). Checkpoints are
read with ``weights_only=True`` always: they hold tensors and plain data only, and a file that
needs more is refused before any of its code can run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._logging import get_logger
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..errors import SavedModelError
from ..nn.graph import OutputSpec

__all__ = [
    "CHECKSUM_FIELD",
    "CONFIG",
    "METADATA",
    "STATISTICS",
    "WEIGHTS",
    "SavedModel",
    "SavedModelError",
    "checksums",
    "load_weights_into",
    "new_model",
    "read_checkpoint",
    "read_saved_model",
    "write_model_files",
]

_log = get_logger(__name__)
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
STATISTICS = "statistics.json"
METADATA = "metadata.json"
CHECKSUM_FIELD = "sha256"
# metadata.json cannot hold its own digest; every field of it is checked on reading instead
_CHECKED = (WEIGHTS, CONFIG, STATISTICS)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """File name -> sha256 of the files of a saved model that ``metadata.json`` vouches for."""
    return {name: _sha256(folder / name) for name in _CHECKED}


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_model_files(
    folder: Path,
    weights: dict[str, torch.Tensor],
    weights_metadata: dict[str, str],
    config: dict[str, Any],
    statistics: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    """Write the four files of a saved model into ``folder``, each flushed to disk; the sha256
    of the first three goes into ``metadata.json``. A full disk raises ``OSError`` (ENOSPC)."""
    from safetensors.torch import save

    _write_durably(folder / WEIGHTS, save(weights, metadata=weights_metadata))
    _write_durably(folder / CONFIG, json.dumps(config, indent=1).encode())
    _write_durably(folder / STATISTICS, json.dumps(statistics, indent=1).encode())
    _write_durably(folder / METADATA, json.dumps({**metadata, CHECKSUM_FIELD: checksums(folder)}, indent=1).encode())


def read_json(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON object from ``path`` with the ``required`` fields, or an error naming them."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SavedModelError(path, "missing: the folder is not a complete saved model") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SavedModelError(path, f"unreadable ({err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SavedModelError(path, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    if not isinstance(data, dict):
        raise SavedModelError(path, f"expected a JSON object, found {type(data).__name__}")
    for name in required:
        if name not in data:
            raise SavedModelError(path, "missing", field=name)
    return data


def verify_checksums(folder: Path, meta: dict[str, Any]) -> None:
    """Compare each file with the sha256 ``metadata.json`` recorded when it was saved."""
    recorded = meta.get(CHECKSUM_FIELD)
    if recorded is None:
        _log.info("%s was saved without checksums (by an earlier version); loading it unverified", folder)
        return
    if not isinstance(recorded, dict) or set(recorded) != set(_CHECKED):
        raise SavedModelError(folder / METADATA, f"expected the sha256 of {list(_CHECKED)}", field=CHECKSUM_FIELD)
    for name, expected in recorded.items():
        file = folder / name
        if not file.is_file():
            raise SavedModelError(file, "missing: the folder is not a complete saved model")
        actual = _sha256(file)
        if actual != expected:
            raise SavedModelError(
                file,
                f"damaged or edited since it was saved: its sha256 is {actual[:16]}..., "
                f"{METADATA} records {str(expected)[:16]}...",
            )


def _statistics(path: Path, data: dict[str, Any]) -> DatasetStatistics:
    known = {f.name: f for f in dataclasses.fields(DatasetStatistics)}
    for name, spec in known.items():
        if name not in data and spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise SavedModelError(path, "missing", field=name)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SavedModelError(path, f"unknown (known: {sorted(known)})", field=unknown[0])
    try:
        return DatasetStatistics.from_dict(data)
    except (TypeError, ValueError, AttributeError) as err:
        raise SavedModelError(path, f"bad value ({err})", field="element_reference") from None


def _mapping_and_spec(path: Path, meta: dict[str, Any]) -> tuple[ElementMapping, OutputSpec]:
    try:
        mapping = ElementMapping.from_dict(meta["element_mapping"])
    except (TypeError, ValueError, AttributeError) as err:
        raise SavedModelError(path, f"not an element mapping ({err})", field="element_mapping") from None
    try:
        spec = OutputSpec(**meta["spec"])
    except TypeError as err:
        raise SavedModelError(path, f"not an output spec ({err})", field="spec") from None
    if mapping.size != spec.num_elements:
        raise SavedModelError(
            path,
            f"maps {mapping.size} elements but the network (field 'spec.num_elements' and the weights) "
            f"was built for {spec.num_elements}",
            field="element_mapping",
        )
    return mapping, spec


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (no pickled code can run), or an error naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise SavedModelError(path, "missing: the folder is not a complete saved model")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise SavedModelError(path, f"not a readable safetensors file ({err})") from None


@dataclass
class SavedModel:
    """The checked contents of a saved model folder."""

    folder: Path
    name: str
    config: dict[str, Any]
    statistics: DatasetStatistics
    element_mapping: ElementMapping
    spec: OutputSpec
    weights: dict[str, torch.Tensor]

    def description(self) -> dict[str, Any]:
        """What ``PhysicsMLModel._module_from_description`` takes."""
        return {
            "statistics": self.statistics.to_dict(),
            "element_mapping": self.element_mapping.to_dict(),
            "spec": dataclasses.asdict(self.spec),
        }


def read_saved_model(folder: Path) -> SavedModel:
    """Read and check every file of a saved model folder (checksums first, when recorded)."""
    if not (folder / CONFIG).exists():
        raise FileNotFoundError(f"no saved model in {folder} (missing {CONFIG})")
    meta = read_json(folder / METADATA, ("element_mapping", "spec"))
    verify_checksums(folder, meta)
    spec = read_json(folder / CONFIG, ("name", "config"))
    if not isinstance(spec["name"], str):
        raise SavedModelError(folder / CONFIG, "expected a model name", field="name")
    if not isinstance(spec["config"], dict):
        raise SavedModelError(folder / CONFIG, "expected an object of config fields", field="config")
    statistics = _statistics(folder / STATISTICS, read_json(folder / STATISTICS))
    mapping, output = _mapping_and_spec(folder / METADATA, meta)
    return SavedModel(folder, spec["name"], spec["config"], statistics, mapping, output, read_weights(folder / WEIGHTS))


def new_model(saved: SavedModel) -> Any:
    """An untrained wrapper of the saved family and config; errors name ``config.json``."""
    from ..config.base import ConfigError
    from .registry import get_model_class

    try:
        cls = get_model_class(saved.name)
    except ConfigError as err:
        raise SavedModelError(saved.folder / CONFIG, str(err), field="name") from None
    try:
        return cls(saved.config)
    except ConfigError as err:
        raise SavedModelError(saved.folder / CONFIG, str(err), field="config") from None


def load_weights_into(network: torch.nn.Module, saved: SavedModel) -> None:
    """``load_state_dict`` whose failure names the weights file and what does not fit."""
    try:
        network.load_state_dict(saved.weights)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise SavedModelError(
            saved.folder / WEIGHTS,
            f"does not fit the network that {CONFIG} and {METADATA} describe ({detail[:400]})",
        ) from None


def read_checkpoint(path: Path, map_location: Any = None) -> dict[str, Any]:
    """A checkpoint read with ``weights_only=True`` whatever the environment says
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` only changes calls that leave it unset)."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location if map_location is not None else "cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        reason = next((line for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else "")
        raise SavedModelError(
            path,
            "refused: it holds pickled Python objects, not only tensors and plain data, and loading "
            f"them could run code ({reason.strip()[:200]})",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise SavedModelError(path, f"not a readable checkpoint (truncated or damaged?): {str(err)[:300]}") from None
    if not isinstance(checkpoint, dict):
        raise SavedModelError(path, f"not a checkpoint: it holds a {type(checkpoint).__name__}")
    return checkpoint
