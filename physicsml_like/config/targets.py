"""Typed descriptions of a model's targets, mapped once from the datamodule's fields.

Users name targets the way physicsml does (``y_graph_scalars``, ``y_node_vector``, ``y_stress``,
...). :func:`targets_from_config` turns those fields into one typed object per target — the only
place where a datamodule field becomes a target kind. Everything else (the network's heads,
scaling, readout, loss, metrics, assembly of predictions, the ASE result name) asks the target;
the behaviour lives in :mod:`physicsml_like.targets`, one class per kind.

Examples
--------
>>> from physicsml_like.config import DataModuleConfig
>>> dm = DataModuleConfig(y_graph_scalars=["energy", "gap"], y_node_vector="forces")
>>> [(t.kind, t.name) for t in targets_from_config(dm, energy_key="energy", compute_forces=True)]
[('energy', 'energy'), ('graph_scalar', 'gap'), ('forces', 'forces')]
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .base import StrictConfig
from .datamodule import DataModuleConfig

__all__ = [
    "AnyTarget",
    "EdgeScalarTarget",
    "EdgeVectorTarget",
    "EnergyTarget",
    "ForcesTarget",
    "GraphScalarTarget",
    "GraphVectorTarget",
    "NodeScalarTarget",
    "NodeVectorTarget",
    "StressTarget",
    "TargetKind",
    "TargetSpec",
    "targets_from_config",
]

TargetKind = Literal[
    "energy", "forces", "stress", "graph_scalar", "graph_vector", "node_scalar", "node_vector", "edge_scalar", "edge_vector"
]
Level = Literal["graph", "node", "edge"]


class TargetSpec(StrictConfig):
    """What every target is: a name, a kind and where its label sits.

    Class attributes say what a kind is, so that code asks the target instead of dispatching on
    the kind: ``level`` (one value per structure, atom or edge), ``head`` (the
    :class:`~physicsml_like.nn.graph.OutputSpec` field of the network head it needs; ``None`` for
    derivatives of the energy), ``stacked`` (scalars of one level share one head, a column each),
    ``can_have_variance`` (a mean-variance head is possible) and ``default_loss``.
    """

    kind: TargetKind
    name: str
    """The name in labels, predictions, metrics and losses."""
    labelled: bool = True
    """Whether the data carries a label for it (forces and stress are predicted without one)."""
    column: int | None = None
    """Column of this target in its level's stacked scalar label and head."""
    variance_column: int | None = None
    """Column of its variance in the head (mean-variance models), else ``None``."""

    level: ClassVar[Level] = "graph"
    head: ClassVar[str | None] = None
    stacked: ClassVar[bool] = False
    can_have_variance: ClassVar[bool] = False
    default_loss: ClassVar[dict[str, Any]] = {}

    @property
    def has_variance(self) -> bool:
        return self.variance_column is not None


class EnergyTarget(TargetSpec):
    """The extensive energy: per-element references, a per-atom scale and shift, a sum over atoms.

    Its loss compares energies per atom by default: on total energies the energy term of a 32-atom
    copper cell outweighed the forces so much that an EGNN sat at the zero-force error for its
    first ~100 steps; per atom, forces and energies both fell from the first epoch.
    """

    kind: Literal["energy"] = "energy"
    head: ClassVar[str | None] = "num_graph_scalars"
    stacked: ClassVar[bool] = True
    can_have_variance: ClassVar[bool] = True
    default_loss: ClassVar[dict[str, Any]] = {"per_atom": True}


class GraphScalarTarget(TargetSpec):
    """A per-structure scalar other than the energy (scaled by the label mean and spread)."""

    kind: Literal["graph_scalar"] = "graph_scalar"
    head: ClassVar[str | None] = "num_graph_scalars"
    stacked: ClassVar[bool] = True
    can_have_variance: ClassVar[bool] = True


class GraphVectorTarget(TargetSpec):
    """A per-structure vector that rotates with the structure, e.g. a dipole."""

    kind: Literal["graph_vector"] = "graph_vector"
    head: ClassVar[str | None] = "graph_vector_dim"


class NodeScalarTarget(TargetSpec):
    """A per-atom scalar, e.g. partial charges."""

    kind: Literal["node_scalar"] = "node_scalar"
    level: ClassVar[Level] = "node"
    head: ClassVar[str | None] = "num_node_scalars"
    stacked: ClassVar[bool] = True
    can_have_variance: ClassVar[bool] = True


class NodeVectorTarget(TargetSpec):
    """A per-atom vector predicted directly (not as an energy derivative)."""

    kind: Literal["node_vector"] = "node_vector"
    level: ClassVar[Level] = "node"
    head: ClassVar[str | None] = "node_vector_dim"


class ForcesTarget(TargetSpec):
    """``-dE/dr``: a derivative of the energy, so it needs no head of its own."""

    kind: Literal["forces"] = "forces"
    level: ClassVar[Level] = "node"


class StressTarget(TargetSpec):
    """``(1/V) dE/dε`` of periodic structures (ASE sign convention), a derivative of the energy.

    Weight 10 by default: stress in eV/Å³ is small; at weight 10 it was learnt (MAE 9 meV/Å³
    against 32 at weight 1 on the bundled copper) and the energies improved too, without slowing
    the forces (100 did)."""

    kind: Literal["stress"] = "stress"
    default_loss: ClassVar[dict[str, Any]] = {"weight": 10.0}


class EdgeScalarTarget(TargetSpec):
    """A per-edge scalar (e.g. a bond property), compared on labelled edges only."""

    kind: Literal["edge_scalar"] = "edge_scalar"
    level: ClassVar[Level] = "edge"
    head: ClassVar[str | None] = "num_edge_scalars"
    stacked: ClassVar[bool] = True


class EdgeVectorTarget(TargetSpec):
    """A per-edge vector, compared on labelled edges only."""

    kind: Literal["edge_vector"] = "edge_vector"
    level: ClassVar[Level] = "edge"
    head: ClassVar[str | None] = "edge_vector_dim"


AnyTarget = Annotated[
    EnergyTarget | GraphScalarTarget | GraphVectorTarget | NodeScalarTarget | NodeVectorTarget | ForcesTarget
    | StressTarget | EdgeScalarTarget | EdgeVectorTarget,
    Field(discriminator="kind"),
]


def _stack(
    specs: list[TargetSpec], names: list[str], make: Any, variance: bool
) -> None:
    """Scalars of one level: a column each, then (mean-variance) a variance column each."""
    for column, name in enumerate(names):
        kind_class = make(name)
        with_variance = variance and kind_class.can_have_variance
        specs.append(kind_class(name=name, column=column, variance_column=len(names) + column if with_variance else None))


def targets_from_config(
    dm: DataModuleConfig,
    *,
    energy_key: str | None,
    compute_forces: bool = False,
    compute_stress: bool = False,
    uncertainty: str | None = None,
) -> list[TargetSpec]:
    """Every target of a model, labelled or predicted, from physicsml's datamodule fields.

    ``y_node_vector`` is the forces label when forces are computed, else a directly predicted
    node vector; forces and stress are predicted whenever they are computed, labelled or not.
    """
    variance = uncertainty == "mean_var"
    specs: list[TargetSpec] = []
    _stack(specs, dm.y_graph_scalars or [], lambda n: EnergyTarget if n == energy_key else GraphScalarTarget, variance)
    if dm.y_graph_vector:
        specs.append(GraphVectorTarget(name=dm.y_graph_vector))
    _stack(specs, dm.y_node_scalars or [], lambda n: NodeScalarTarget, variance)
    if compute_forces:
        specs.append(ForcesTarget(name=dm.y_node_vector or "forces", labelled=dm.y_node_vector is not None))
    elif dm.y_node_vector:
        specs.append(NodeVectorTarget(name=dm.y_node_vector))
    _stack(specs, dm.y_edge_scalars or [], lambda n: EdgeScalarTarget, variance)
    if dm.y_edge_vector:
        specs.append(EdgeVectorTarget(name=dm.y_edge_vector))
    if compute_stress:
        specs.append(StressTarget(name=dm.y_stress or "stress", labelled=dm.y_stress is not None))
    return specs
