"""One class per target kind: its scaling, readout, label and results.

Networks predict dimensionless values; each target scales them back with constants taken from
the training statistics (or the config): the energy with a per-atom scale and shift plus float64
per-element references, other scalars with their label mean and spread, vectors with their RMS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ase.stress import full_3x3_to_voigt_6_stress

from .. import keys as K
from ..config.model import ModelConfig
from ..config.targets import (
    EdgeScalarTarget,
    EdgeVectorTarget,
    EnergyTarget,
    ForcesTarget,
    GraphScalarTarget,
    GraphVectorTarget,
    NodeScalarTarget,
    NodeVectorTarget,
    StressTarget,
    TargetSpec,
)
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..nn.graph import (
    OUT_ATOMIC_DIPOLES,
    OUT_CHARGES,
    OUT_EDGE_SCALARS,
    OUT_EDGE_VECTOR,
    OUT_GRAPH_VECTOR,
    OUT_NODE_SCALARS,
    OUT_NODE_VECTOR,
)
from ..nn.readout import dipole_moment
from ..nn.scatter import scatter_sum
from .base import MIN_VARIANCE, Pair, Readout, Target

__all__ = [
    "EdgeScalar",
    "EdgeVector",
    "Energy",
    "Forces",
    "GraphScalar",
    "GraphVector",
    "NodeScalar",
    "NodeVector",
    "Stress",
]


def _scale(value: float | None) -> float:
    """A spread used as a scale: 1 where the statistics have none (or zero)."""
    return float(value) if value else 1.0


class _StandardisedScalar(Target):
    """A scalar predicted as ``mean + std * head`` from its label statistics (float64 buffers):
    ``statistics.<level>_scalar_mean`` and ``_std`` for the target's level."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> None:
        super().__init__(spec, statistics, config, mapping)
        means: dict[str, float] = getattr(statistics, f"{spec.level}_scalar_mean")
        stds: dict[str, float] = getattr(statistics, f"{spec.level}_scalar_std")
        self.register_buffer("mean", torch.tensor(float(means.get(spec.name, 0.0)), dtype=torch.float64))
        self.register_buffer("std", torch.tensor(_scale(stds.get(spec.name)), dtype=torch.float64))

    def standardised(self, head: torch.Tensor) -> torch.Tensor:
        return self.mean.to(head.dtype) + self.std.to(head.dtype) * head

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}: mean={float(self.mean):.4g}, std={float(self.std):.4g}"


# ---------------------------------------------------------------------- graph level
class Energy(Target):
    """``E = scale * head + shift * n_atoms + sum_i E0(Z_i)``; the references stay in float64
    (:meth:`offset`), so float32 models lose nothing to energies of hundreds of eV: the network
    predicts the residual, which is also what the loss compares."""

    spec_class = EnergyTarget
    ase_name = "energy"
    element_energy: torch.Tensor

    def __init__(self, spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> None:
        super().__init__(spec, statistics, config, mapping)
        references = torch.zeros(mapping.size, dtype=torch.float64)
        slot = mapping.lookup_table()
        for z, energy in statistics.element_reference.items():
            if slot[z] >= 0:
                references[slot[z]] = energy
        self.register_buffer("element_energy", references)
        self.scale = float(config.energy_scale if config.energy_scale is not None else statistics.energy_scale())
        self.shift = float(config.energy_shift if config.energy_shift is not None else statistics.per_atom_energy_mean)

    def readout(self, readout: Readout) -> torch.Tensor:
        summed = readout.graph_scalars("sum")[:, self.spec.column]
        return self.scale * summed + self.shift * readout.n_atoms

    def variance(self, readout: Readout) -> torch.Tensor | None:
        if self.spec.variance_column is None:
            return None
        return readout.graph_variance(self.spec.variance_column) * self.scale**2 + MIN_VARIANCE

    def offset(self, readout: Readout) -> torch.Tensor:
        graph = readout.graph
        return scatter_sum(self.element_energy[graph.species], graph.batch, graph.num_graphs)

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_GRAPH_SCALARS][:, self.spec.column]

    def pair(self, batch: Any, prediction: torch.Tensor, offset: torch.Tensor | None,
             variance: torch.Tensor | None, n_atoms: torch.Tensor) -> Pair:
        assert offset is not None
        label = (self.label(batch) - offset).to(prediction.dtype)
        return Pair(prediction, label, variance, n_atoms)

    def metric_names(self) -> list[str]:
        return [self.name, f"{self.name}_per_atom"]

    def ase_results(self, value: np.ndarray, atoms: Any) -> dict[str, Any]:
        energy = float(value[0])
        return {"energy": energy, "free_energy": energy}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}: scale={self.scale:.4g}, shift={self.shift:.4g} per atom"


class GraphScalar(_StandardisedScalar):
    """A per-structure scalar: per-atom contributions pooled (``pool_type``), then standardised."""

    spec_class = GraphScalarTarget

    def __init__(self, spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> None:
        super().__init__(spec, statistics, config, mapping)
        self.pooling = config.pool_type

    def readout(self, readout: Readout) -> torch.Tensor:
        return self.standardised(readout.graph_scalars(self.pooling)[:, self.spec.column])

    def variance(self, readout: Readout) -> torch.Tensor | None:
        if self.spec.variance_column is None:
            return None
        return readout.graph_variance(self.spec.variance_column) * self.std.to(readout.n_atoms.dtype) ** 2 + MIN_VARIANCE

    def offset(self, readout: Readout) -> torch.Tensor:
        # predictions of graph scalars are reported in float64, like the energy's
        return torch.zeros(readout.graph.num_graphs, dtype=torch.float64, device=readout.graph.positions.device)

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_GRAPH_SCALARS][:, self.spec.column]

    def pair(self, batch: Any, prediction: torch.Tensor, offset: torch.Tensor | None,
             variance: torch.Tensor | None, n_atoms: torch.Tensor) -> Pair:
        return Pair(prediction, self.label(batch).to(prediction.dtype), variance, n_atoms)


class GraphVector(Target):
    """A per-structure vector: the network's own, or the dipole ``sum_i q_i (r_i - c) + mu_i``
    from per-atom charges and dipoles; scaled by the label RMS."""

    spec_class = GraphVectorTarget

    def __init__(self, spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> None:
        super().__init__(spec, statistics, config, mapping)
        self.scale = _scale(statistics.graph_vector_rms.get(spec.name))

    def readout(self, readout: Readout) -> torch.Tensor:
        raw, graph = readout.raw, readout.graph
        if OUT_GRAPH_VECTOR in raw:
            vector = raw[OUT_GRAPH_VECTOR]
        elif OUT_CHARGES in raw:
            vector = dipole_moment(raw[OUT_CHARGES], readout.require(OUT_ATOMIC_DIPOLES), graph.positions, graph.batch, graph.num_graphs)
        else:
            vector = readout.require(OUT_GRAPH_VECTOR)
        return self.scale * vector

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_GRAPH_VECTOR]


class Stress(Target):
    """``(1/V) dE/dε`` for fully periodic structures with a volume; zero for the others, whose
    stress is undefined (and which the loss leaves out)."""

    spec_class = StressTarget
    ase_name = "stress"

    def from_virial(self, virial: torch.Tensor | None, cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
        virial = virial if virial is not None else torch.zeros_like(cell)
        volume = torch.linalg.det(cell).abs()
        periodic = pbc.reshape(-1, 3).all(dim=1) & (volume > 1e-12)
        safe_volume = torch.where(periodic, volume, torch.ones_like(volume))
        return torch.where(periodic[:, None, None], virial / safe_volume[:, None, None], torch.zeros_like(virial))

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_STRESS].reshape(-1, 3, 3)

    def pair(self, batch: Any, prediction: torch.Tensor, offset: torch.Tensor | None,
             variance: torch.Tensor | None, n_atoms: torch.Tensor) -> Pair:
        periodic = batch[K.PBC].reshape(-1, 3).all(dim=1)
        return Pair(prediction[periodic], self.label(batch)[periodic].to(prediction.dtype))

    def ase_results(self, value: np.ndarray, atoms: Any) -> dict[str, Any]:
        if not atoms.pbc.all():
            return {}
        return {"stress": full_3x3_to_voigt_6_stress(value[0].astype(np.float64))}


# ---------------------------------------------------------------------- node level
class NodeScalar(_StandardisedScalar):
    """A per-atom scalar, standardised by its label mean and spread."""

    spec_class = NodeScalarTarget

    def readout(self, readout: Readout) -> torch.Tensor:
        return self.standardised(readout.require(OUT_NODE_SCALARS)[:, self.spec.column])

    def variance(self, readout: Readout) -> torch.Tensor | None:
        if self.spec.variance_column is None:
            return None
        head = readout.require(OUT_NODE_SCALARS)[:, self.spec.variance_column]
        return F.softplus(head) * self.std.to(head.dtype) ** 2 + MIN_VARIANCE

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_NODE_SCALARS][:, self.spec.column]


class NodeVector(Target):
    """A per-atom vector predicted directly, scaled by its label RMS."""

    spec_class = NodeVectorTarget

    def __init__(self, spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> None:
        super().__init__(spec, statistics, config, mapping)
        self.scale = _scale(statistics.node_vector_rms.get(spec.name))

    def readout(self, readout: Readout) -> torch.Tensor:
        return self.scale * readout.require(OUT_NODE_VECTOR)

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_NODE_VECTOR]


class Forces(Target):
    """``-dE/dr``; zero where the energy does not depend on an atom (no neighbours)."""

    spec_class = ForcesTarget
    ase_name = "forces"

    def from_gradient(self, gradient: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        return -gradient if gradient is not None else torch.zeros_like(positions)

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_NODE_VECTOR]

    def ase_results(self, value: np.ndarray, atoms: Any) -> dict[str, Any]:
        return {"forces": value.astype(np.float64)}


# ---------------------------------------------------------------------- edge level
class _EdgeTarget(Target):
    """Edge labels exist on some edges only (bonds): the loss compares those."""

    def pair(self, batch: Any, prediction: torch.Tensor, offset: torch.Tensor | None,
             variance: torch.Tensor | None, n_atoms: torch.Tensor) -> Pair:
        mask = batch[K.EDGE_LABEL_MASK]
        return Pair(prediction[mask], self.label(batch)[mask].to(prediction.dtype))


class EdgeScalar(_StandardisedScalar, _EdgeTarget):
    """A per-edge scalar, standardised by the mean and spread of its labelled edges."""

    spec_class = EdgeScalarTarget

    def readout(self, readout: Readout) -> torch.Tensor:
        return self.standardised(readout.require(OUT_EDGE_SCALARS)[:, self.spec.column])

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_EDGE_SCALARS][:, self.spec.column]


class EdgeVector(_EdgeTarget):
    """A per-edge vector, as the network predicts it."""

    spec_class = EdgeVectorTarget

    def readout(self, readout: Readout) -> torch.Tensor:
        return readout.require(OUT_EDGE_VECTOR)

    def label(self, batch: Any) -> torch.Tensor:
        return batch[K.Y_EDGE_VECTOR]

