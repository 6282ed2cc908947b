"""The datamodule config: which labels to learn, how to build graphs, how to batch them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictConfig

__all__ = [
    "AtomFeature",
    "ConformerConfig",
    "DataModuleConfig",
    "SplitConfig",
    "default_cache_dir",
]

AtomFeature = Literal["formal_charge", "aromatic", "in_ring", "degree", "hybridisation"]


def default_cache_dir() -> Path:
    """``$PHYSICSML_LIKE_CACHE``, else ``$XDG_CACHE_HOME/physicsml_like``, else ``~/.cache/physicsml_like``.

    Never the working directory: caches are large and keyed by content, so they belong in a
    cache folder that outlives any one run.
    """
    if env := os.environ.get("PHYSICSML_LIKE_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "physicsml_like"


class SplitConfig(StrictConfig):
    """Batching of one split."""

    batch_size: int = Field(32, gt=0)
    """Structures per batch (per device under DDP)."""


class ConformerConfig(StrictConfig):
    """How SMILES and RDKit molecules without coordinates get a 3D conformer."""

    seed: int = 42
    """Random seed given to RDKit's ETKDG embedding, so conformers are reproducible."""
    optimise: Literal["mmff", "uff"] | None = "mmff"
    """Force-field relaxation after embedding (``None`` keeps the raw ETKDG geometry)."""
    max_attempts: int = Field(10, gt=0)
    """Embedding attempts before giving up on a molecule (later ones use random coordinates)."""


class DataModuleConfig(StrictConfig):
    """Everything the datamodule needs: targets, graph settings, batching and caching.

    Targets name labels in the data (calculator results, ``atoms.info`` / ``atoms.arrays``
    entries, or DataFrame columns). When forces are computed by the model, the first entry of
    ``y_graph_scalars`` is the energy.
    """

    train: SplitConfig = Field(default_factory=lambda: SplitConfig(batch_size=32))
    """Batching of the training split."""
    validation: SplitConfig = Field(default_factory=lambda: SplitConfig(batch_size=64))
    """Batching of the validation split."""
    test: SplitConfig = Field(default_factory=lambda: SplitConfig(batch_size=64))
    """Batching of the test split."""
    predict: SplitConfig = Field(default_factory=lambda: SplitConfig(batch_size=64))
    """Batching for prediction."""
    num_workers: int | Literal["all"] = 0
    """DataLoader worker processes; ``"all"`` uses every available core."""

    # element mapping
    elements: list[int | str] | None = None
    """Elements of the one-hot encoding (symbols or atomic numbers), in order. Inferred from the
    training data when neither this nor ``num_elements`` is given."""
    num_elements: int | None = Field(None, gt=0)
    """Size of a one-hot over the raw atomic number (Z < num_elements), as in physicsml. Ignored
    when ``elements`` is given."""

    # targets
    y_graph_scalars: list[str] | None = None
    """Structure-level scalar labels (e.g. ``["energy"]``)."""
    y_graph_vector: str | None = None
    """A structure-level vector label (e.g. ``"dipole"``)."""
    y_node_scalars: list[str] | None = None
    """Per-atom scalar labels (e.g. ``["charges"]``)."""
    y_node_vector: str | None = None
    """A per-atom vector label (e.g. ``"forces"``)."""
    y_edge_scalars: list[str] | None = None
    """Per-bond scalar labels (molecule inputs with bonds); given per bond, copied to both
    directions."""
    y_edge_vector: str | None = None
    """A per-bond vector label; the reverse direction gets the negated vector."""
    y_stress: str | None = None
    """A 3x3 (or Voigt 6) stress label in eV/Å³, ASE sign convention (e.g. ``"stress"``)."""
    graph_attrs_cols: list[str] | None = None
    """Structure-level numeric inputs given to the model (not learned)."""

    # features
    atom_features: list[AtomFeature] | None = None
    """RDKit atom features appended to the one-hot (molecule inputs only)."""
    bond_features: bool = False
    """Carry RDKit bond features on the edges (molecule inputs only); bonds longer than the cutoff
    are added as edges."""

    # graph
    cut_off: float = Field(5.0, gt=0)
    """Neighbour-list cutoff radius in Å."""
    pbc: tuple[bool, bool, bool] | None = None
    """Periodicity for structures whose source gives none (DataFrame without a pbc column,
    SMILES). Structures read with their own pbc keep it."""
    cell: list[list[float]] | None = None
    """A 3x3 cell (rows are lattice vectors) for structures that carry none (all-zero cell)."""
    self_interaction: bool = False
    """Add an ``(i, i)`` edge with zero shift for every atom."""
    max_neighbours_per_atom: float | None = Field(400.0, gt=0)
    """Warn when the graphs have more neighbours per atom than this on average: a cutoff much
    larger than meant, whose edges (and memory) grow with its cube. ``None``: no check."""
    min_distance: float | None = Field(0.5, ge=0)
    """Warn when two atoms are closer than this (Å): duplicated atoms, or positions in the wrong
    units. ``None`` or 0: no check."""
    input_checks: Literal["warn", "error"] = "warn"
    """What the two checks above do: warn, or raise a ``DataError`` (before training starts)."""

    # table columns (DataFrame and dict inputs)
    atomic_numbers_col: str = "atomic_numbers"
    """Column with per-structure atomic numbers."""
    coordinates_col: str = "coordinates"
    """Column with per-structure ``[n, 3]`` coordinates in Å."""
    cell_col: str = "cell"
    """Optional column with a 3x3 (or 9-long) cell per structure."""
    pbc_col: str = "pbc"
    """Optional column with three booleans per structure."""
    smiles_col: str = "smiles"
    """Column with SMILES, used when there are no coordinates."""
    conformer: ConformerConfig = Field(default_factory=ConformerConfig)
    """3D conformer generation for SMILES and RDKit molecules."""

    # batching
    pre_batch: Literal["in_memory", "on_disk"] | None = "in_memory"
    """``None``: one torch-geometric ``Data`` per structure, collated per batch.
    ``"in_memory"``: graphs packed once in RAM, batches gathered by slicing.
    ``"on_disk"``: packed graphs written once to memory-mapped files in ``cache_dir``."""
    cache_dir: str | None = None
    """Folder for ``on_disk`` caches (default: :func:`default_cache_dir`)."""
    verify_cache: bool = True
    """Check every cached file's checksum when opening an ``on_disk`` cache."""
    shuffle: bool = True
    """Reshuffle the training structures every epoch."""
    drop_last: bool = False
    """Drop the last incomplete training batch."""
    seed: int | None = None
    """Seed of the per-epoch shuffling (the order of epoch ``e`` depends only on seed and ``e``).
    ``None``: the model's ``seed``, so one seed sets both the initial weights and the batch order
    (0 for a datamodule used on its own)."""

    @field_validator("cell")
    @classmethod
    def _cell_is_3x3(cls, cell: list[list[float]] | None) -> list[list[float]] | None:
        if cell is not None and (len(cell) != 3 or any(len(row) != 3 for row in cell)):
            raise ValueError("cell must be 3x3 (three lattice vectors of three components)")
        return cell

    @field_validator("y_graph_scalars", "y_node_scalars", "y_edge_scalars", "graph_attrs_cols")
    @classmethod
    def _non_empty_unique(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        if len(names) == 0:
            raise ValueError("give at least one name, or leave the field unset")
        if len(set(names)) != len(names):
            raise ValueError(f"names repeat: {names}")
        return names

    @field_validator("num_workers")
    @classmethod
    def _workers_non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("num_workers must be >= 0 or 'all'")
        return value

    @model_validator(mode="after")
    def _targets_distinct(self) -> DataModuleConfig:
        seen: dict[str, str] = {}
        for field_name, names in self.target_names().items():
            for name in names:
                if name in seen:
                    raise ValueError(
                        f"label {name!r} is used by both {seen[name]} and {field_name}"
                    )
                seen[name] = field_name
        return self

    def target_names(self) -> dict[str, list[str]]:
        """Label names per target field (only the fields that are set)."""
        out: dict[str, list[str]] = {}
        for field_name in (
            "y_graph_scalars",
            "y_graph_vector",
            "y_node_scalars",
            "y_node_vector",
            "y_edge_scalars",
            "y_edge_vector",
            "y_stress",
        ):
            value = getattr(self, field_name)
            if value is None:
                continue
            out[field_name] = list(value) if isinstance(value, list) else [value]
        return out

    def resolved_num_workers(self) -> int:
        """``num_workers`` as an int."""
        if self.num_workers == "all":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return int(self.num_workers)

    @property
    def shuffle_seed(self) -> int:
        """``seed`` as an int (0 when unset)."""
        return 0 if self.seed is None else self.seed

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()
