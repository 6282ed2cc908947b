"""The one inference path every engine adapter goes through.

:class:`Potential` maps raw arrays, (positions, atomic numbers, cell, pbc) of one structure or of
many, to the model's predictions: energy (eV), forces (eV/Å), stress (eV/Å³) and any other target,
exactly as :meth:`~physicsml_like.training.wrapper.PhysicsMLModel.predict` computes them (it runs
the same :meth:`~physicsml_like.training.module.AtomisticLightningModule.predict_values`). The ASE
calculator, torch-sim and OpenMM convert their own layouts and units into these arrays and back,
and nothing else: no adapter has a copy of the physics (offsets, stress sign, units).

A call builds only what changes with the positions, the neighbour list (vesin or matscipy, the
same lists as graph building); element slots and one-hot node attributes are cached per
composition, and the batch is assembled directly (no datamodule, no Trainer).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch

from .. import keys as K
from .._allocator import keep_freed_memory
from ..data.neighbours import neighbour_list
from ..errors import DataError
from ..nn.builder import torch_dtype
from ..training.module import AtomisticLightningModule

__all__ = ["Potential", "prepared_module"]


def prepared_module(module: AtomisticLightningModule, device: str | torch.device, dtype: str | None) -> AtomisticLightningModule:
    """A copy of ``module`` for inference on ``device``, in ``dtype`` when given (float64 for
    long energy-conserving dynamics); the float64 reference energies and scales stay float64."""
    module = copy.deepcopy(module).to(device)
    if dtype is not None:
        target = torch_dtype(dtype)
        module.network.to(target)
        inference = module.inference_network()
        if inference is not module.network:
            inference.to(target)
        module.model_dtype = target
    module.eval()
    return module


def _numpy(value: Any, dtype: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _as_array(value: Any, name: str, dtype: Any, shape_tail: tuple[int, ...], *, one_allowed: bool = False) -> np.ndarray:
    """``value`` as a numpy array of shape ``[n, *shape_tail]`` (or ``shape_tail`` alone, read as
    one row, when ``one_allowed``), or an error naming the argument."""
    array = _numpy(value, dtype)
    if one_allowed and array.shape == shape_tail:
        array = array[None]
    if array.ndim != len(shape_tail) + 1 or tuple(array.shape[1:]) != shape_tail:
        want = "[" + ", ".join(["n", *map(str, shape_tail)]) + "]"
        raise DataError(f"{name} must have shape {want}, got {list(array.shape)}", field=name)
    return array


class Potential:
    """(positions, atomic numbers, cell, pbc) -> predictions, for one structure or many.

    Parameters
    ----------
    model: a trained :class:`~physicsml_like.training.wrapper.PhysicsMLModel` or its module.
    device: where the model runs (``"cpu"``, ``"cuda"``, ...).
    dtype: ``"float32"`` or ``"float64"`` to run in another precision than the model's.

    Examples
    --------
    >>> potential = Potential(model)                                    # doctest: +SKIP
    >>> out = potential(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc)  # doctest: +SKIP
    >>> out["energy"].shape, out["forces"].shape                        # doctest: +SKIP
    (torch.Size([1]), torch.Size([n_atoms, 3]))
    """

    def __init__(self, model: Any, *, device: str | torch.device = "cpu", dtype: str | None = None) -> None:
        module = model if isinstance(model, AtomisticLightningModule) else model._require_module()
        dm = module.config.datamodule
        if dm.atom_features or dm.bond_features:
            raise DataError("models with RDKit atom or bond features need molecules, not bare atoms; "
                            "engines support models without them", field="atom_features")
        self.module = prepared_module(module, device, dtype)
        self.device = torch.device(device)
        keep_freed_memory()  # an MD step reuses its large per-edge buffers (see _allocator)
        self.cutoff = float(dm.cut_off)
        self.self_interaction = bool(dm.self_interaction)
        self.graph_attrs_names: list[str] = list(dm.graph_attrs_cols or [])
        self.mapping = self.module.element_mapping
        self._lut = self.mapping.lookup_table()
        self._numbers: bytes | None = None
        self._nodes: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ description
    @property
    def dtype(self) -> torch.dtype:
        """The precision the network runs in."""
        return self.module.model_dtype

    @property
    def atomic_numbers(self) -> list[int]:
        """The elements the model knows, in slot order."""
        return [int(z) for z in np.flatnonzero(self._lut >= 0)[np.argsort(self._lut[self._lut >= 0])]]

    @property
    def energy_key(self) -> str | None:
        """The energy target's name (``None`` for a model without one)."""
        return self.module.config.energy_key

    @property
    def computes_forces(self) -> bool:
        return any(t.kind == "forces" for t in self.module.all_targets)

    @property
    def computes_stress(self) -> bool:
        return any(t.kind == "stress" for t in self.module.all_targets)

    def target_names(self) -> dict[str, str]:
        """Target name -> kind (``energy``, ``forces``, ``stress``, ``graph_vector``, ...)."""
        return {t.name: t.kind for t in self.module.all_targets}

    # ------------------------------------------------------------------ inputs
    def _node_fields(self, numbers: np.ndarray) -> dict[str, torch.Tensor]:
        """Slots and one-hot attributes of a composition, built once per set of atomic numbers."""
        key = numbers.tobytes()
        if key != self._numbers:
            if len(numbers) and (numbers.min() < 0 or numbers.max() > 118):
                raise DataError(f"atomic_numbers must lie in 1..118, got {int(numbers.min())}..{int(numbers.max())}",
                                field="atomic_numbers")
            self.mapping.check(numbers, "atomic_numbers")
            species = torch.as_tensor(self._lut[numbers], dtype=torch.long, device=self.device)
            self._nodes = {
                K.ATOMIC_NUMBERS: torch.as_tensor(numbers, dtype=torch.long, device=self.device),
                K.SPECIES: species,
                K.NODE_ATTRS: torch.eye(self.mapping.size, device=self.device)[species],
            }
            self._numbers = key
        return self._nodes

    def batch(
        self,
        positions: Any,
        atomic_numbers: Any,
        cell: Any,
        pbc: Any,
        system: Any = None,
        graph_attrs: Any = None,
    ) -> Batch:
        """The model's input batch of one structure (``system=None``) or several.

        positions ``[N, 3]`` Å; atomic_numbers ``[N]``; cell ``[3, 3]`` or ``[B, 3, 3]`` (rows are
        the cell vectors, Å); pbc ``[3]`` or ``[B, 3]``; system ``[N]``: index of each atom's
        structure, sorted (atoms of a structure contiguous); graph_attrs ``[B, F]`` when the model
        was trained with ``graph_attrs_cols``.
        """
        positions = _as_array(positions, "positions", np.float64, (3,))
        numbers = _numpy(atomic_numbers, np.int64).reshape(-1)
        if len(numbers) != len(positions):
            raise DataError(f"atomic_numbers has {len(numbers)} entries for {len(positions)} positions",
                            field="atomic_numbers")
        cells = _as_array(cell, "cell", np.float64, (3, 3), one_allowed=True)
        pbcs = _as_array(pbc, "pbc", bool, (3,), one_allowed=True)
        n_systems = len(cells)
        if system is None:
            if n_systems != 1:
                raise DataError(f"{n_systems} cells need `system`, the structure of each atom", field="system")
            system = np.zeros(len(positions), dtype=np.int64)
        else:
            system = _numpy(system, np.int64).reshape(-1)
            if len(system) != len(positions) or (len(system) and (np.any(np.diff(system) < 0)
                                                                  or system[-1] >= n_systems or system[0] < 0)):
                raise DataError(f"system must give each of the {len(positions)} atoms its structure (0..{n_systems - 1}), "
                                "sorted", field="system")
        if len(pbcs) != n_systems:
            raise DataError(f"pbc has {len(pbcs)} rows for {n_systems} cells", field="pbc")
        counts = np.bincount(system, minlength=n_systems)
        ptr = np.concatenate([[0], np.cumsum(counts)])
        edges_i, edges_j, shifts = [], [], []
        for s in range(n_systems):
            lo, hi = ptr[s], ptr[s + 1]
            periodic = pbcs[s]
            if periodic.any() and abs(np.linalg.det(cells[s][periodic] @ cells[s][periodic].T)) < 1e-12:
                raise DataError(f"structure {s} is periodic but its cell has zero volume along the periodic "
                                "directions", field="cell")
            i, j, shift = neighbour_list(positions[lo:hi], cells[s], periodic, self.cutoff, self.self_interaction)
            edges_i.append(i + lo)
            edges_j.append(j + lo)
            shifts.append(shift)
        device = self.device
        fields = dict(self._node_fields(numbers))
        fields[K.BATCH] = torch.as_tensor(system, device=device)
        fields[K.PTR] = torch.as_tensor(ptr, device=device)
        fields[K.POSITIONS] = torch.as_tensor(positions, dtype=torch.float64, device=device)
        fields[K.EDGE_INDEX] = torch.as_tensor(np.stack([np.concatenate(edges_i), np.concatenate(edges_j)]),
                                               dtype=torch.long, device=device)
        fields[K.CELL_SHIFT] = torch.as_tensor(np.concatenate(shifts), dtype=torch.float64, device=device)
        fields[K.CELL] = torch.as_tensor(cells, dtype=torch.float64, device=device)
        fields[K.PBC] = torch.as_tensor(pbcs, device=device)
        if self.graph_attrs_names:
            if graph_attrs is None:
                raise DataError(f"the model was trained with graph attributes {self.graph_attrs_names}; "
                                "give them as graph_attrs", field="graph_attrs")
            attrs = _numpy(graph_attrs, np.float64).reshape(n_systems, -1)
            fields[K.GRAPH_ATTRS] = torch.as_tensor(attrs, dtype=torch.float32, device=device)
        batch = Batch(**fields)
        batch._num_graphs = n_systems
        return batch

    # ------------------------------------------------------------------ inference
    def __call__(self, positions: Any, atomic_numbers: Any, cell: Any, pbc: Any, system: Any = None,
                 graph_attrs: Any = None) -> dict[str, torch.Tensor]:
        """Predictions (detached, on the CPU) of one structure or several (see :meth:`batch`):
        ``energy [B]`` float64 eV, ``forces [N, 3]`` eV/Å, ``stress [B, 3, 3]`` eV/Å³ (zero for a
        structure that is not fully periodic), every other target under its name, and
        ``<name>__variance`` for mean-variance models."""
        return self.predict_batch(self.batch(positions, atomic_numbers, cell, pbc, system, graph_attrs))

    def predict_batch(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Predictions of a batch made by :meth:`batch` (the same as ``predict``)."""
        return self.module.predict_values(batch)
