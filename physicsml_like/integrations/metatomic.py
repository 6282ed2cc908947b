"""A trained model as a metatomic model: LAMMPS, i-PI, ASE and the other engines of metatomic.

The engine gives the systems and their neighbour lists (the model requests a full, strict list
at its cutoff); the model gives the energy (per system, or per atom when asked), computed from
``system.positions``, ``system.cell`` and the pairs' integer cell shifts, so the engine's
autograd gives forces and stress. The energy is that of the exported TorchScript model
(:mod:`physicsml_like.integrations.export`): the same traced energy, here fed by the engine's
neighbour list. ``metatomic-torch`` is imported only here (extra ``physicsml_like[metatomic]``).
"""

from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ._index_select import unpatched_index_select
from .export import build_potential, write_atomically

__all__ = ["export_metatomic"]


def _metatomic() -> Any:
    try:
        with unpatched_index_select():
            import metatensor.torch  # noqa: F401
            import metatomic.torch as mta
    except ImportError as error:  # pragma: no cover - the extra is installed in the tests
        raise ImportError("format='metatomic' needs metatomic-torch: pip install 'physicsml_like[metatomic]'") from error
    return mta


def _wrapper_class() -> Any:
    """The metatomic module class (its module imports metatomic at the top, where TorchScript
    resolves the annotations)."""
    _metatomic()
    with unpatched_index_select():
        from ._metatomic_module import MetatomicPotential
    return MetatomicPotential


def atomistic_model(model: Any, *, dtype: str | None = None, device: str = "cpu") -> Any:
    """The ``metatomic.torch.AtomisticModel`` of a model or an ensemble (not yet saved)."""
    mta = _metatomic()
    potential = build_potential(model, dtype=dtype, device=device)
    wrapped = _wrapper_class()(potential).eval()
    atomic_types = [int(z) for z in torch.nonzero(potential.lookup >= 0).flatten().tolist()]
    dtype_name = str(potential.dtype_holder.dtype).replace("torch.", "")
    outputs = {"energy": mta.ModelOutput(unit="eV", sample_kind="system")}
    if potential.ensemble:
        outputs["energy_uncertainty"] = mta.ModelOutput(unit="eV", sample_kind="system")
    capabilities = mta.ModelCapabilities(
        outputs=outputs, atomic_types=atomic_types, interaction_range=potential.cutoff, length_unit="angstrom",
        supported_devices=["cpu", "cuda"] if device == "cpu" else [device.split(":")[0], "cpu"], dtype=dtype_name,
    )
    members = getattr(model, "members", None)
    name = type(members[0] if members else model).__name__
    metadata = mta.ModelMetadata(name=f"physicsml_like {name}", description="exported with physicsml_like")
    return mta.AtomisticModel(wrapped, metadata, capabilities)


def export_metatomic(model: Any, path: Path, *, dtype: str | None = None, device: str = "cpu") -> Path:
    """Write the metatomic model of ``model`` to ``path`` (a ``.pt`` file, written atomically)."""
    if path.suffix != ".pt":
        raise ConfigError(f"export: metatomic models are .pt files, got {path.name!r}")
    with unpatched_index_select():
        exported = atomistic_model(model, dtype=dtype, device=device)
        return write_atomically(path, lambda name: exported.save(name))
