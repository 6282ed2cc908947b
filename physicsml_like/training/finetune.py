"""Fine-tuning helpers: take pretrained weights by (mapped) name, freeze sub-modules by pattern,
refit the per-element reference energies to new labels."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import keys as K
from ..config.base import ConfigError
from ..config.datamodule import DataModuleConfig
from ..data.statistics import DatasetStatistics
from ..data.table import StructureTable

__all__ = ["copy_matching_weights", "refit_references", "replay_table", "residual_references", "set_trainable", "with_replay"]


def _source_name(name: str, modules_to_match: dict[str, str] | None) -> str:
    for new_prefix, old_prefix in (modules_to_match or {}).items():
        if name == new_prefix or name.startswith(new_prefix + "."):
            return old_prefix + name[len(new_prefix) :]
    return name


def copy_matching_weights(
    network: nn.Module, pretrained: nn.Module, modules_to_match: dict[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """Copy every pretrained parameter/buffer whose (mapped) name and shape match.

    Returns ``(loaded, kept)``: names taken from the pretrained network, and names left as
    initialised (new heads, adapters, changed shapes). Raises when nothing matches, which means
    the two networks have nothing in common (a wrong model or a wrong mapping).
    """
    source = pretrained.state_dict()
    target = network.state_dict()
    loaded, kept = [], []
    with torch.no_grad():
        for name, tensor in target.items():
            origin = source.get(_source_name(name, modules_to_match))
            if origin is not None and origin.shape == tensor.shape:
                tensor.copy_(origin.to(dtype=tensor.dtype, device=tensor.device))
                loaded.append(name)
            else:
                kept.append(name)
    if not loaded:
        raise ValueError(
            "no pretrained weight matches the new network by name and shape; check the model "
            "family and transfer_learning.modules_to_match"
        )
    return loaded, kept


def set_trainable(network: nn.Module, *, frozen_patterns: list[str], frozen_names: set[str] | None = None) -> list[str]:
    """Freeze parameters whose name (or a parent module's name) matches a pattern, or is listed
    in ``frozen_names``; unfreeze the rest. Returns the frozen names."""
    frozen = []
    for name, parameter in network.named_parameters():
        parts = name.split(".")
        prefixes = [".".join(parts[:k]) for k in range(1, len(parts) + 1)]
        hit = any(fnmatch.fnmatch(p, pattern) for p in prefixes for pattern in frozen_patterns)
        hit = hit or (frozen_names is not None and name in frozen_names)
        parameter.requires_grad_(not hit)
        if hit:
            frozen.append(name)
    return frozen


def refit_references(pretrained: DatasetStatistics, new: DatasetStatistics) -> DatasetStatistics:
    """``refit_references="labels"``: the pretrained statistics with the new data's reference
    energies and per-atom shift, fitted to the labels alone (the network's scale is kept)."""
    return replace(
        pretrained,
        element_reference={**pretrained.element_reference, **new.element_reference},
        per_atom_energy_mean=new.per_atom_energy_mean,
    )


def residual_references(
    pretrained: DatasetStatistics, arrays: Mapping[str, np.ndarray], predicted: np.ndarray, energy_column: int
) -> DatasetStatistics:
    """``refit_references="residual"``: the pretrained statistics with each reference energy of
    the new data's elements moved by the least-squares fit, over the element counts, of
    ``E_label - E_pretrained`` (``predicted``, eV per structure, in the order of ``arrays``).

    The network, its scale and its per-atom shift are unchanged, so the refitted model predicts
    ``E_pretrained + counts @ dE0``: exactly the new labels when they differ from the pretrained
    model by a constant per element. With fewer distinct compositions than elements the fit is
    the minimum-norm one (as for references fitted from scratch).
    """
    z = np.asarray(arrays["atomic_numbers"], dtype=np.int64)
    atom_ptr = np.asarray(arrays["atom_ptr"], dtype=np.int64)
    elements = [int(e) for e in np.flatnonzero(np.bincount(z, minlength=119))]
    column = np.full(119, -1, dtype=np.int64)
    column[elements] = np.arange(len(elements))
    counts = np.zeros((len(atom_ptr) - 1, len(elements)))
    owner = np.repeat(np.arange(len(atom_ptr) - 1), np.diff(atom_ptr))
    np.add.at(counts, (owner, column[z]), 1.0)
    labels = np.asarray(arrays[K.Y_GRAPH_SCALARS], dtype=np.float64)[:, energy_column]
    residual = labels - np.asarray(predicted, dtype=np.float64)
    delta, *_ = np.linalg.lstsq(counts, residual, rcond=None)
    references = dict(pretrained.element_reference)
    for element, change in zip(elements, delta, strict=True):
        references[element] = references.get(element, 0.0) + float(change)
    return replace(pretrained, element_reference=references)


def replay_table(
    pretrained: Any, structures: Any, config: DataModuleConfig, *, count: int | None, fraction: float | None,
    seed: int, num_train: int,
) -> StructureTable:
    """The replay structures (any source) labelled by ``pretrained`` (a trained model of this
    package): every label ``config`` asks for is the model's own prediction. ``count`` of them,
    or ``fraction * num_train``, are drawn once with ``seed``; by default all."""
    from ..data.sources import read_table
    from ..data.table import LabelRequest

    table = read_table(structures, config, with_labels=False)
    total = table.num_structures
    wanted = count if count is not None else (round(fraction * num_train) if fraction is not None else total)
    wanted = max(1, min(wanted, total))
    if wanted < total:
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=wanted, replace=False))
        table = _subset(table, chosen)
    predicted = pretrained.predict(table)
    request = LabelRequest.from_config(config)
    missing = [name for name in (*request.graph_names, *request.node_names) if name not in predicted]
    if missing:
        raise ConfigError(f"transfer_learning.replay: the pretrained model does not predict {missing}, which the "
                          "fine-tuning data is labelled with, so the replay structures cannot be labelled")
    for name in request.graph_names:
        table.graph_labels[name] = np.asarray(predicted[name], dtype=np.float64)
    for name in request.node_names:
        table.node_labels[name] = np.concatenate([np.asarray(v, dtype=np.float64) for v in predicted[name]])
    table.source = f"replay structures ({table.source}) labelled by the pretrained model"
    return table


def _subset(table: StructureTable, rows: np.ndarray) -> StructureTable:
    """The structures ``rows`` of an unlabelled table of atoms (no molecule features)."""
    ptr = table.atom_ptr
    pieces = [slice(int(ptr[r]), int(ptr[r + 1])) for r in rows]
    return StructureTable.from_lists(
        numbers=[table.atomic_numbers[p] for p in pieces], positions=[table.positions[p] for p in pieces],
        cells=table.cell[rows], pbcs=table.pbc[rows], graph_labels={}, node_labels={},
        row_ids=[int(r) for r in (table.row_ids[rows] if len(table.row_ids) else rows)], source=table.source,
    )


def with_replay(train_data: Any, replay: StructureTable, config: DataModuleConfig) -> StructureTable:
    """The fine-tuning data and the labelled replay structures as one training table."""
    from ..data.sources import read_table

    return StructureTable.concatenate([read_table(train_data, config), replay])
