"""Forgetting and replay: how far fine-tuning moved a model away from the pretrained one, and
structures labelled by the pretrained model to hold it in place.

Replay itself is an option of fine-tuning (``transfer_learning.replay``, see
:class:`physicsml_like.config.ReplayConfig`); the wrapper labels the structures with
:func:`replay_table` at the start of fine-tuning and mixes them into the training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..training.finetune import replay_table

__all__ = ["forgetting", "replay_table"]


def forgetting(pretrained: Any, fine_tuned: Any, structures: Any) -> dict[str, float]:
    """RMS differences between two models' predictions on ``structures`` (any source, labels
    not needed), typically ones outside the fine-tuning data.

    Returns ``energy_mev_per_atom`` (RMS over structures of the per-atom energy difference),
    ``forces_mev_per_angstrom`` (RMS over force components) when both models give forces,
    ``stress_mev_per_angstrom3`` (RMS over the components of fully periodic structures) when both
    give stress, and ``structures``. Zero means nothing was forgotten; compare with the
    fine-tuned model's errors on its own data to judge how much is too much.

    Examples
    --------
    >>> forgetting(load_model("foundation"), tuned, other_phases)  # doctest: +SKIP
    {'energy_mev_per_atom': 4.1, 'forces_mev_per_angstrom': 52.0, 'structures': 40}
    """
    before, after = pretrained.predict(structures), fine_tuned.predict(structures)
    kinds, tuned_kinds = pretrained.prediction_kinds(), fine_tuned.prediction_kinds()
    by_kind = {kind: name for name, kind in kinds.items()}
    tuned_by_kind = {kind: name for name, kind in tuned_kinds.items()}
    if "energy" not in by_kind or "energy" not in tuned_by_kind:
        raise ValueError("forgetting compares energies: both models need an energy target")
    energy_a, energy_b = before[by_kind["energy"]], after[tuned_by_kind["energy"]]
    n_atoms = _atoms_per_structure(pretrained, structures, before)
    out: dict[str, float] = {
        "energy_mev_per_atom": 1e3 * float(np.sqrt(np.mean(((energy_b - energy_a) / n_atoms) ** 2))),
    }
    if "forces" in by_kind and "forces" in tuned_by_kind:
        fa = np.concatenate(before[by_kind["forces"]])
        fb = np.concatenate(after[tuned_by_kind["forces"]])
        out["forces_mev_per_angstrom"] = 1e3 * float(np.sqrt(np.mean((fb - fa) ** 2)))
    if "stress" in by_kind and "stress" in tuned_by_kind:
        sa, sb = np.asarray(before[by_kind["stress"]]), np.asarray(after[tuned_by_kind["stress"]])
        periodic = np.any(sa.reshape(len(sa), -1) != 0, axis=1) | np.any(sb.reshape(len(sb), -1) != 0, axis=1)
        if periodic.any():
            out["stress_mev_per_angstrom3"] = 1e3 * float(np.sqrt(np.mean((sb[periodic] - sa[periodic]) ** 2)))
    out["structures"] = float(len(energy_a))
    return out


def _atoms_per_structure(model: Any, structures: Any, predictions: dict[str, Any]) -> np.ndarray:
    for value in predictions.values():
        if isinstance(value, list):  # a per-atom prediction: one array per structure
            return np.array([len(v) for v in value], dtype=np.float64)
    from ..data.sources import read_table

    return read_table(structures, model.config.datamodule, with_labels=False).atoms_per_structure.astype(np.float64)
