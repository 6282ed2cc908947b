"""Dataset statistics from the training split, used to shift and scale a model's outputs.

Computed in float64, in chunks of structures, so they cost little memory on an ``on_disk``
cache of any size. Stored with a trained model (JSON) so inference needs no data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import keys as K

__all__ = ["DatasetStatistics", "compute_statistics"]

_CHUNK = 200_000


@dataclass
class DatasetStatistics:
    """What a model needs to know about its training data.

    Attributes
    ----------
    num_structures, num_atoms: sizes of the training split.
    elements: atomic numbers present, ascending.
    element_counts: atoms of each element in ``elements``.
    avg_num_neighbours: mean edges per atom (normalises message sums).
    energy_key: the graph scalar used as energy (``None`` when there are none).
    element_reference: per-element reference energy (eV) by least squares, keyed by Z.
    per_atom_energy_mean, per_atom_energy_std: of ``(E - sum E0) / n_atoms``.
    force_rms: root mean square force component (``None`` without force labels).
    graph_scalar_mean, graph_scalar_std: per graph scalar, over structures.
    node_scalar_mean, node_scalar_std: per node scalar, over atoms.
    edge_scalar_mean, edge_scalar_std: per edge scalar, over the labelled edges (both directions
        of a bond; edges without a label do not count). Empty in statistics saved before edge
        scalars were scaled.
    graph_vector_rms, node_vector_rms: root mean square component of vector labels.
    """

    num_structures: int
    num_atoms: int
    elements: list[int]
    element_counts: list[int]
    avg_num_neighbours: float
    energy_key: str | None = None
    element_reference: dict[int, float] = field(default_factory=dict)
    per_atom_energy_mean: float = 0.0
    per_atom_energy_std: float = 1.0
    force_rms: float | None = None
    graph_scalar_mean: dict[str, float] = field(default_factory=dict)
    graph_scalar_std: dict[str, float] = field(default_factory=dict)
    node_scalar_mean: dict[str, float] = field(default_factory=dict)
    node_scalar_std: dict[str, float] = field(default_factory=dict)
    edge_scalar_mean: dict[str, float] = field(default_factory=dict)
    edge_scalar_std: dict[str, float] = field(default_factory=dict)
    graph_vector_rms: dict[str, float] = field(default_factory=dict)
    node_vector_rms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["element_reference"] = {str(k): v for k, v in self.element_reference.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetStatistics:
        data = dict(data)
        data["element_reference"] = {int(k): float(v) for k, v in data.get("element_reference", {}).items()}
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> DatasetStatistics:
        return cls.from_dict(json.loads(text))

    def energy_scale(self) -> float:
        """Scale for per-atom energies: the force RMS when there are forces (as MACE does),
        else the per-atom energy spread; never zero."""
        scale = self.force_rms if self.force_rms else self.per_atom_energy_std
        return float(scale) if scale and scale > 1e-12 else 1.0


def compute_statistics(
    arrays: Mapping[str, np.ndarray],
    *,
    graph_scalar_names: list[str] | None = None,
    node_scalar_names: list[str] | None = None,
    edge_scalar_names: list[str] | None = None,
    graph_vector_name: str | None = None,
    node_vector_name: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
) -> DatasetStatistics:
    """Statistics of packed training graphs.

    ``energy_key`` names the graph scalar treated as energy (per-element references by least
    squares on the element counts); ``forces_key`` the node vector treated as forces. Edge
    scalars are averaged over the labelled edges only (``edge_label_mask``): the other edges
    carry a placeholder zero, not a label.
    """
    atom_ptr = np.asarray(arrays["atom_ptr"])
    n_atoms = int(atom_ptr[-1])
    z_hist = np.zeros(119, dtype=np.int64)
    for start in range(0, n_atoms, _CHUNK * 10):
        z_hist += np.bincount(np.asarray(arrays["atomic_numbers"][start : start + _CHUNK * 10], dtype=np.int64), minlength=119)
    elements = [int(z) for z in np.flatnonzero(z_hist)]
    stats = DatasetStatistics(
        num_structures=len(atom_ptr) - 1,
        num_atoms=n_atoms,
        elements=elements,
        element_counts=[int(z_hist[z]) for z in elements],
        avg_num_neighbours=float(np.asarray(arrays["edge_ptr"])[-1]) / max(n_atoms, 1),
        energy_key=energy_key,
    )
    graph_scalar_names = graph_scalar_names or []
    if graph_scalar_names:
        y = np.asarray(arrays[K.Y_GRAPH_SCALARS], dtype=np.float64)
        for k, name in enumerate(graph_scalar_names):
            stats.graph_scalar_mean[name] = float(y[:, k].mean())
            stats.graph_scalar_std[name] = float(y[:, k].std())
    if node_scalar_names:
        _store_mean_std(stats.node_scalar_mean, stats.node_scalar_std, node_scalar_names, arrays[K.Y_NODE_SCALARS])
    if edge_scalar_names:
        _store_mean_std(
            stats.edge_scalar_mean, stats.edge_scalar_std, edge_scalar_names,
            arrays[K.Y_EDGE_SCALARS], arrays[K.EDGE_LABEL_MASK],
        )
    if graph_vector_name:
        v = np.asarray(arrays[K.Y_GRAPH_VECTOR], dtype=np.float64)
        stats.graph_vector_rms[graph_vector_name] = float(np.sqrt(np.mean(v**2))) if v.size else 0.0
    if node_vector_name:
        rms = _chunked_rms(arrays[K.Y_NODE_VECTOR])
        stats.node_vector_rms[node_vector_name] = rms
        if forces_key == node_vector_name:
            stats.force_rms = rms
    if energy_key is not None:
        k = graph_scalar_names.index(energy_key)
        energies = np.asarray(arrays[K.Y_GRAPH_SCALARS][:, k], dtype=np.float64)
        counts = _element_count_matrix(arrays["atomic_numbers"], atom_ptr, {z: k for k, z in enumerate(elements)})
        _fit_references(stats, counts, energies, elements)
    return stats


def _store_mean_std(
    means: dict[str, float],
    stds: dict[str, float],
    names: list[str],
    values: np.ndarray,
    mask: np.ndarray | None = None,
) -> None:
    """Per-column mean and spread of ``[rows, len(names)]`` values, in float64 and in chunks of
    rows; with ``mask`` only the rows it marks count."""
    sums = np.zeros(len(names))
    squares = np.zeros(len(names))
    count = 0
    for start in range(0, len(values), _CHUNK):
        block = np.asarray(values[start : start + _CHUNK], dtype=np.float64)
        if mask is not None:
            block = block[np.asarray(mask[start : start + _CHUNK], dtype=bool)]
        sums += block.sum(axis=0)
        squares += (block**2).sum(axis=0)
        count += len(block)
    mean = sums / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    for k, name in enumerate(names):
        means[name] = float(mean[k])
        stds[name] = float(std[k])


def _chunked_rms(values: np.ndarray) -> float:
    """Root mean square of every component, in float64 and in chunks of rows."""
    total = 0.0
    count = 0
    for start in range(0, len(values), _CHUNK):
        block = np.asarray(values[start : start + _CHUNK], dtype=np.float64)
        total += float((block**2).sum())
        count += block.size
    return float(np.sqrt(total / max(count, 1)))


def _element_count_matrix(atomic_numbers: np.ndarray, atom_ptr: np.ndarray, column: dict[int, int]) -> np.ndarray:
    """``[S, n_elements]`` atoms of each element in each structure."""
    n_struct = len(atom_ptr) - 1
    lut = np.full(119, -1, dtype=np.int64)
    lut[list(column)] = list(column.values())
    counts = np.zeros((n_struct, len(column)), dtype=np.float64)
    for s0 in range(0, n_struct, _CHUNK):
        s1 = min(s0 + _CHUNK, n_struct)
        a0, a1 = int(atom_ptr[s0]), int(atom_ptr[s1])
        z = np.asarray(atomic_numbers[a0:a1], dtype=np.int64)
        owner = np.repeat(np.arange(s1 - s0), np.diff(atom_ptr[s0 : s1 + 1]))
        np.add.at(counts[s0:s1], (owner, lut[z]), 1.0)
    return counts


def _fit_references(stats: DatasetStatistics, counts: np.ndarray, energies: np.ndarray, elements: list[int]) -> None:
    """Per-element energies by least squares; then mean and spread of the per-atom residual.

    With fewer distinct compositions than elements the system is underdetermined and lstsq
    returns the minimum-norm solution; the residual statistics stay correct either way.
    """
    references, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    stats.element_reference = {z: float(e) for z, e in zip(elements, references, strict=True)}
    n = counts.sum(axis=1)
    residual = (energies - counts @ references) / np.maximum(n, 1.0)
    stats.per_atom_energy_mean = float(residual.mean())
    stats.per_atom_energy_std = float(residual.std())


def with_energy_references(
    stats: DatasetStatistics,
    arrays: Mapping[str, np.ndarray],
    references: Mapping[int, float],
    energy_column: int,
) -> DatasetStatistics:
    """A copy of ``stats`` using given per-element references (by Z) instead of the fit; the
    per-atom residual mean and spread are recomputed against them."""
    from dataclasses import replace

    elements = stats.elements
    missing = [z for z in elements if z not in references]
    if missing:
        from ase.data import chemical_symbols

        raise ValueError(
            "energy_references has no value for "
            + ", ".join(chemical_symbols[z] for z in missing)
            + ", which the training data contains"
        )
    column = {z: k for k, z in enumerate(elements)}
    counts = _element_count_matrix(arrays["atomic_numbers"], np.asarray(arrays["atom_ptr"]), column)
    energies = np.asarray(arrays[K.Y_GRAPH_SCALARS][:, energy_column], dtype=np.float64)
    vector = np.array([references[z] for z in elements])
    residual = (energies - counts @ vector) / np.maximum(counts.sum(axis=1), 1.0)
    return replace(
        stats,
        element_reference={int(z): float(e) for z, e in references.items()},
        per_atom_energy_mean=float(residual.mean()),
        per_atom_energy_std=float(residual.std()),
    )
