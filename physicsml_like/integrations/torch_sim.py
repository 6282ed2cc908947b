"""torch-sim: batched relaxations and molecular dynamics of many structures in one call.

A thin adapter over :class:`~physicsml_like.integrations.potential.Potential`, the one inference
path. torch-sim's units are the model's (eV, Å, eV/Å, eV/Å³), so only layouts are converted:

- **cell**: torch-sim stores the cell vectors as *columns* (``state.cell[b] = A.T``, as its
  ``atoms_to_state`` writes it); the potential takes them as rows (ASE's layout), so the adapter
  passes ``state.row_vector_cell``.
- **pbc**: torch-sim 0.3 has one flag for the whole state (every structure periodic in all three
  directions, or none); a per-direction flag (``[3]`` or ``[n_systems, 3]``) is passed through.
- **stress**: both sides use ``(1/V) dE/dε`` with tension positive (ASE's sign; torch-sim's own
  MACE and metatomic adapters pass it on unchanged and its cell optimisers form the cell force
  as ``-V (stress + P)``), so the values pass unchanged.
- **device and dtype**: the potential returns CPU tensors (energies in float64); the results are
  moved to the state's device and cast to its dtype.

``torch_sim`` is an optional dependency: ``pip install 'physicsml_like[torch-sim]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .potential import Potential

try:
    from torch_sim.models.interface import ModelInterface
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "model.to_torch_sim() needs torch-sim: pip install 'physicsml_like[torch-sim]' "
        "(torch-sim-atomistic 0.3 on Python 3.11)"
    ) from error

__all__ = ["TorchSimEnsemble", "TorchSimModel"]


def _dtype_name(dtype: str | torch.dtype | None) -> str | None:
    """``"float32"``/``"float64"`` for the potential, from a name or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return dtype


def _field(state: Any, name: str) -> Any:
    """``state.name`` of a ``SimState`` or ``state[name]`` of a state dict."""
    return state[name] if isinstance(state, dict) else getattr(state, name)


def _row_vector_cells(state: Any) -> torch.Tensor:
    """The cells ``[B, 3, 3]`` with the cell vectors as rows (torch-sim keeps them as columns)."""
    cell = _field(state, "cell")
    if cell.ndim == 2:
        cell = cell[None]
    return cell.mT


def _stress_to_torch_sim(stress: torch.Tensor) -> torch.Tensor:
    """Our stress as torch-sim reads it: the same ``(1/V) dE/dε`` (tension positive), unchanged."""
    return stress


def _pbc_rows(pbc: Any, n_systems: int) -> np.ndarray:
    """torch-sim's periodicity (one flag, ``[3]`` or ``[B, 3]``) as ``[B, 3]`` booleans."""
    flags = np.asarray(pbc.detach().cpu() if isinstance(pbc, torch.Tensor) else pbc, dtype=bool)
    flags = np.broadcast_to(flags, (3,)) if flags.ndim == 0 else flags
    flags = np.broadcast_to(flags, (n_systems, 3)) if flags.ndim == 1 else flags
    if flags.shape != (n_systems, 3):
        raise DataError(f"pbc must be one flag, [3] or [{n_systems}, 3], got shape {list(flags.shape)}", field="pbc")
    return flags.copy()  # a broadcast view is read-only


class TorchSimModel(ModelInterface):
    """A trained model as a torch-sim ``ModelInterface``: ``ts.optimize``, ``ts.integrate`` and
    ``ts.static`` run many structures in one batched call.

    Parameters
    ----------
    model: a trained :class:`~physicsml_like.training.wrapper.PhysicsMLModel` (or its module).
    device: where the network runs (``"cpu"``, ``"cuda"``, ...); results are returned on it.
    dtype: ``"float32"``/``"float64"`` (or ``torch.float32``/``torch.float64``) to run in another
        precision than the model's; torch-sim builds its states in this dtype.

    Notes
    -----
    ``forward(state)`` returns ``energy [n_systems]`` (eV), ``forces [n_atoms, 3]`` (eV/Å) and,
    for models trained with stress, ``stress [n_systems, 3, 3]`` (eV/Å³, zero for structures that
    are not periodic), each equal to ``predict``'s values for the same structures.
    ``compute_forces`` is always true (torch-sim's integrators and optimisers need forces);
    ``compute_stress`` says whether the model was trained with stress and cannot be changed.
    """

    def __init__(self, model: Any, *, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None) -> None:
        super().__init__()
        self._setup([Potential(model, device=device, dtype=_dtype_name(dtype))], device)

    def _setup(self, potentials: list[Potential], device: str | torch.device) -> None:
        first = potentials[0]
        if first.energy_key is None:
            raise DataError("torch-sim needs a model with an energy target", field="y_graph_scalars")
        if not first.computes_forces:
            raise DataError("torch-sim needs a model that computes forces (compute_forces=True)",
                            field="compute_forces")
        self.potentials = potentials
        self._device = torch.device(device)
        self._dtype = first.dtype
        self._compute_forces = True
        self._compute_stress = first.computes_stress
        self._memory_scales_with = "n_atoms_x_density"  # a radial cutoff: neighbours grow with density
        kinds = first.target_names()
        self._names = {kind: next(n for n, k in kinds.items() if k == kind)
                       for kind in ("energy", "forces", "stress") if kind in kinds.values()}

    def extra_repr(self) -> str:
        potential = self.potentials[0]
        members = f", {len(self.potentials)} members" if len(self.potentials) > 1 else ""
        return (f"elements={potential.atomic_numbers}, cutoff={potential.cutoff} Å, dtype={self._dtype}, "
                f"device={self._device}, stress={self._compute_stress}{members}")

    def _predict(self, state: Any) -> list[dict[str, torch.Tensor]]:
        """Each potential's raw predictions for the structures of ``state`` (on the CPU)."""
        cells = _row_vector_cells(state)
        positions = _field(state, "positions")
        pbc = _pbc_rows(_field(state, "pbc"), len(cells))
        system = _field(state, "system_idx")
        numbers = _field(state, "atomic_numbers")
        outputs = []
        batch, made_for = None, None
        for potential in self.potentials:
            # members with the same cutoff and elements share one neighbour list and batch
            key = (potential.cutoff, potential.self_interaction, potential.atomic_numbers)
            if key != made_for:
                batch, made_for = potential.batch(positions, numbers, cells, pbc, system), key
            outputs.append(potential.predict_batch(batch))
        return outputs

    def _renamed(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torch-sim's names and layouts for one potential's predictions."""
        out = {kind: raw[name] for kind, name in self._names.items()}
        if "stress" in out:
            out["stress"] = _stress_to_torch_sim(out["stress"])
        return out

    @staticmethod
    def _on(values: dict[str, torch.Tensor], like: torch.Tensor) -> dict[str, torch.Tensor]:
        """``values`` on the device and in the dtype of the state's positions ``like``."""
        return {key: value.to(device=like.device, dtype=like.dtype) for key, value in values.items()}

    def forward(self, state: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """``energy [n_systems]``, ``forces [n_atoms, 3]`` and (with stress) ``stress
        [n_systems, 3, 3]`` of a ``SimState`` (or a state dict with ``positions``, ``cell``,
        ``pbc``, ``atomic_numbers``, ``system_idx``)."""
        (raw,) = self._predict(state)
        return self._on(self._renamed(raw), _field(state, "positions"))


class TorchSimEnsemble(TorchSimModel):
    """An ensemble as a torch-sim model: the members' mean energy, forces and stress (as
    :class:`~physicsml_like.integrations.ase.EnsembleCalculator` averages them), with their
    spread as ``energy_std`` and ``forces_std`` (ddof=1)."""

    def __init__(self, ensemble: Any, *, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None) -> None:
        ModelInterface.__init__(self)
        self._setup([Potential(m, device=device, dtype=_dtype_name(dtype)) for m in ensemble.members], device)

    def forward(self, state: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The members' mean of :meth:`TorchSimModel.forward`, plus ``energy_std`` and ``forces_std``."""
        members = [self._renamed(raw) for raw in self._predict(state)]
        out: dict[str, torch.Tensor] = {}
        for key in members[0]:  # averaged in float64, as the ASE ensemble calculator does
            stacked = torch.stack([m[key].to(torch.float64) for m in members])
            out[key] = stacked.mean(dim=0)
            if key in ("energy", "forces") and len(members) > 1:
                out[f"{key}_std"] = stacked.std(dim=0, correction=1)
        return self._on(out, _field(state, "positions"))
