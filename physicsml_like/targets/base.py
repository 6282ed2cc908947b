"""The behaviour every target kind shares, and the per-batch state their readouts use.

A :class:`Target` is a small ``nn.Module`` built from a typed description
(:class:`~physicsml_like.config.targets.TargetSpec`) and the training statistics. It holds its
scale and shift as float64 buffers (so they move with the model and never lose precision) and
knows how to

- read its prediction from the network's raw outputs (:meth:`Target.readout`),
- find its label in a batch and pair the two for the loss (:meth:`Target.pair`),
- name its metrics (:meth:`Target.metric_names`),
- split predictions of many structures into one entry per structure (:meth:`Target.assemble`),
- and give its ASE result (:meth:`Target.ase_results`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config.model import ModelConfig
from ..config.targets import TargetSpec
from ..data.graphs import ElementMapping
from ..data.statistics import DatasetStatistics
from ..nn.graph import OUT_GRAPH_SCALARS, OUT_PER_ATOM_GRAPH_SCALARS, AtomicGraph
from ..nn.readout import Pooling, pool
from ..nn.scatter import scatter_sum

__all__ = ["MIN_VARIANCE", "Pair", "Readout", "Target"]

MIN_VARIANCE = 1e-8  # added to every predicted variance: a Gaussian NLL needs it positive


@dataclass
class Readout:
    """What the targets of one batch read from: the network's raw outputs and the graph.

    Pooled per-atom outputs are computed once per batch and pooling, however many targets read
    them (the energy and every other graph scalar share one head).
    """

    raw: dict[str, torch.Tensor]
    graph: AtomicGraph
    network_name: str
    _pooled: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)

    @property
    def n_atoms(self) -> torch.Tensor:
        """Atoms per structure ``[B]`` in the model dtype."""
        key = ("n_atoms", "")
        if key not in self._pooled:
            graph = self.graph
            self._pooled[key] = torch.bincount(graph.batch, minlength=graph.num_graphs).to(graph.positions.dtype)
        return self._pooled[key]

    def require(self, key: str) -> torch.Tensor:
        """A raw output the targets need; a clear error when the network did not return it."""
        if key not in self.raw:
            raise ValueError(f"{self.network_name} returned no {key!r}, which the targets need")
        return self.raw[key]

    def pooled(self, key: str, how: Pooling) -> torch.Tensor:
        """``raw[key]`` (per atom) pooled into structures, computed once per batch."""
        cache = (key, how)
        if cache not in self._pooled:
            self._pooled[cache] = pool(self.require(key), self.graph.batch, self.graph.num_graphs, how)
        return self._pooled[cache]

    def graph_scalars(self, how: Pooling) -> torch.Tensor:
        """The stacked graph-scalar head ``[B, k]``: pooled per-atom contributions, or what the
        network pooled itself."""
        if OUT_PER_ATOM_GRAPH_SCALARS in self.raw:
            return self.pooled(OUT_PER_ATOM_GRAPH_SCALARS, how)
        if OUT_GRAPH_SCALARS in self.raw:
            return self.raw[OUT_GRAPH_SCALARS]
        raise ValueError(f"{self.network_name} returned no {OUT_GRAPH_SCALARS!r} for y_graph_scalars")

    def graph_variance(self, column: int) -> torch.Tensor:
        """A graph scalar's variance ``[B]`` (before scaling): per-atom variances add up."""
        per_atom = self.raw.get(OUT_PER_ATOM_GRAPH_SCALARS)
        if per_atom is not None:
            return scatter_sum(F.softplus(per_atom[:, column]), self.graph.batch, self.graph.num_graphs)
        return F.softplus(self.graph_scalars("sum")[:, column])


@dataclass
class Pair:
    """A prediction and its label, in the model dtype, restricted to what is labelled."""

    prediction: torch.Tensor
    label: torch.Tensor
    variance: torch.Tensor | None = None
    n_atoms: torch.Tensor | None = None  # graph scalars: atoms per structure, for per-atom losses


class Target(nn.Module):
    """Base of every target kind; subclasses set :attr:`spec_class` and override what differs."""

    spec_class: ClassVar[type[TargetSpec]] = TargetSpec
    #: ASE result name when it differs from the target's own name (energy, forces, stress).
    ase_name: ClassVar[str | None] = None

    def __init__(self, spec: TargetSpec, statistics: DatasetStatistics, config: ModelConfig, mapping: ElementMapping) -> None:
        super().__init__()
        self.spec = spec

    # ------------------------------------------------------------------ description
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def labelled(self) -> bool:
        return self.spec.labelled

    @property
    def is_derivative(self) -> bool:
        """Forces and stress: computed from the energy's gradients, not read from a head."""
        return self.spec.head is None

    def metric_names(self) -> list[str]:
        """Names under which MAE and RMSE are logged (``<split>/<name>_mae``)."""
        return [self.name]

    def extra_repr(self) -> str:
        return f"{self.kind} {self.name!r}" + ("" if self.labelled else " (predicted only)")

    # ------------------------------------------------------------------ prediction
    def readout(self, readout: Readout) -> torch.Tensor:
        """The prediction ``[B, ...]``, ``[N, ...]`` or ``[E, ...]`` in the model dtype."""
        raise NotImplementedError(f"{type(self).__name__} is a derivative of the energy, not a head")

    def variance(self, readout: Readout) -> torch.Tensor | None:
        """The predicted variance (mean-variance models), same shape as the prediction."""
        return None

    def offset(self, readout: Readout) -> torch.Tensor | None:
        """A float64 constant added to the prediction outside the model dtype (reference
        energies), or ``None``."""
        return None

    # ------------------------------------------------------------------ losses
    def label(self, batch: Any) -> torch.Tensor:
        """This target's label in a batch."""
        raise NotImplementedError

    def pair(self, batch: Any, prediction: torch.Tensor, offset: torch.Tensor | None,
             variance: torch.Tensor | None, n_atoms: torch.Tensor) -> Pair:
        """Prediction and label in the model dtype, compared where a label exists."""
        return Pair(prediction, self.label(batch).to(prediction.dtype), variance)

    # ------------------------------------------------------------------ results
    def assemble(self, values: np.ndarray, atoms: np.ndarray, edges: np.ndarray) -> Any:
        """Concatenated predictions of many structures -> an array ``[n, ...]`` (graph level) or
        one array per structure (node and edge level), given atoms and edges per structure."""
        counts = {"graph": None, "node": atoms, "edge": edges}[self.spec.level]
        if counts is None:
            return values
        return np.split(values, np.cumsum(counts)[:-1]) if len(counts) else []

    def ase_results(self, value: np.ndarray, atoms: Any) -> dict[str, Any]:
        """Entries of an ASE calculator's ``results`` for one structure's prediction."""
        if self.spec.level == "graph" and value.ndim > 1 and value.shape[0] == 1:
            value = value[0]
        return {self.ase_name or self.name: value}
