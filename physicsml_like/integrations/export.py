"""A trained model as one TorchScript file that runs without this package.

``model.export("model.pt")`` writes a file that ``torch.jit.load`` alone reads, in a process
where ``physicsml_like`` is not installed. It maps one structure ``(positions [N, 3],
atomic_numbers [N], cell [3, 3], pbc [3])`` to ``{"energy", "forces"[, "stress"]}`` in eV, eV/Å
and eV/Å³, equal to ``predict`` (1e-6 in float64).

How it is built: the energy of a graph (the module's own graph building, the inference network,
the energy target's readout and float64 reference energies) is *traced* with ``torch.jit.trace``
on a small made-up structure holding every element; the families read sizes as tensor shapes, so
the trace serves structures of any size. Around it a *scripted* module checks the input, maps
elements to slots, builds the neighbour list (:func:`neighbour_pairs`, the same edges as
:mod:`physicsml_like.data.neighbours`) unless the caller gives one, applies the strain for the
stress and takes forces and stress by autograd through the trace. Tracing the whole
LightningModule is not possible (it is "not attached to a Trainer"), so only its network and
energy target are traced.
"""

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import keys as K
from .._files import remove_dead_leftovers, temporary_name
from ..errors import ConfigError
from ..nn.builder import torch_dtype
from ..nn.graph import OUT_PER_ATOM_GRAPH_SCALARS
from ..targets import Readout, Stress
from ..training.module import AtomisticLightningModule

__all__ = ["ExportedPotential", "build_potential", "export_model", "neighbour_pairs"]

FORMATS = ("torchscript", "aoti", "metatomic")


# ---------------------------------------------------------------------- neighbour list
def _completed_cell(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """``cell`` with each non-periodic row replaced by a unit vector orthogonal to the periodic
    rows (as :mod:`physicsml_like.data.neighbours` does for matscipy), so it can be inverted."""
    n_periodic = int(pbc.sum())
    if n_periodic == 3:
        return cell
    full = cell.clone()
    rows = cell[pbc]
    open_axes = torch.nonzero(~pbc).flatten()
    if n_periodic == 2:
        normal = torch.linalg.cross(rows[0], rows[1])
        full[open_axes[0]] = normal / torch.linalg.norm(normal)
    else:
        v = rows[0] / torch.linalg.norm(rows[0])
        helper = torch.eye(3, dtype=cell.dtype, device=cell.device)[torch.argmin(torch.abs(v))]
        d1 = torch.linalg.cross(v, helper)
        d1 = d1 / torch.linalg.norm(d1)
        full[open_axes[0]] = d1
        full[open_axes[1]] = torch.linalg.cross(v, d1)
    return full


def neighbour_pairs(
    positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, cutoff: float, self_interaction: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``i != j`` (or ``i == j`` through another image) with
    ``|pos[j] - pos[i] + S @ cell| < cutoff``: ``(edge_index [2, E], shifts [E, 3] int64)``.

    Brute force over all pairs of each periodic image in reach, in float64: ``O(N^2)`` per image,
    meant for the exported model (TorchScript, no compiled extension). The images in reach along a
    periodic direction ``k`` are those with ``|S_k| < cutoff |b_k| + span_k`` (``b_k`` the
    reciprocal vector, ``span_k`` the atoms' extent in fractional coordinates), so unwrapped
    positions and cells smaller than twice the cutoff are covered. Edges are ordered by centre
    atom; ``self_interaction`` appends ``(i, i, 0)`` for every atom, as the training data does.
    """
    pos = positions.to(torch.float64)
    cell64 = cell.to(torch.float64)
    n = pos.shape[0]
    device = pos.device
    if bool(pbc.any()) and n > 0:
        inverse = torch.linalg.inv(_completed_cell(cell64, pbc))
        fractional = pos @ inverse
        span = fractional.max(dim=0).values - fractional.min(dim=0).values
        reciprocal = torch.sqrt((inverse * inverse).sum(dim=0))  # |b_k|: 1 / plane spacing
        # an edge's fractional component along k is below cutoff |b_k| in size, so
        # |S_k| < cutoff |b_k| + span_k: the floor bounds it (the ceiling took up to 5^3 images
        # of a 108-atom copper cell where 3^3 hold every edge)
        reach = torch.floor(cutoff * reciprocal + span).to(torch.long) * pbc.to(torch.long)
        axes = [torch.arange(-int(reach[k]), int(reach[k]) + 1, device=device) for k in range(3)]
        grid = torch.meshgrid(axes, indexing="ij")
        shifts = torch.stack([grid[0].flatten(), grid[1].flatten(), grid[2].flatten()], dim=1)
    else:
        shifts = torch.zeros((1, 3), dtype=torch.long, device=device)
    offsets = shifts.to(torch.float64) @ cell64
    centres: list[torch.Tensor] = []
    neighbours: list[torch.Tensor] = []
    images: list[torch.Tensor] = []
    diagonal = torch.eye(n, dtype=torch.bool, device=device)
    for m in range(shifts.shape[0]):
        vectors = pos.unsqueeze(0) - pos.unsqueeze(1) + offsets[m]  # [i, j, 3]
        close = torch.sqrt((vectors * vectors).sum(dim=-1)) < cutoff
        if not bool(shifts[m].any()):
            close = close & ~diagonal
        i, j = torch.nonzero(close).unbind(1)
        centres.append(i)
        neighbours.append(j)
        images.append(shifts[m].expand(i.shape[0], 3))
    i = torch.cat(centres)
    j = torch.cat(neighbours)
    s = torch.cat(images)
    order = torch.sort(i, stable=True).indices
    i, j, s = i[order], j[order], s[order]
    if self_interaction:
        own = torch.arange(n, device=device)
        i = torch.cat([i, own])
        j = torch.cat([j, own])
        s = torch.cat([s, torch.zeros((n, 3), dtype=torch.long, device=device)])
    return torch.stack([i, j]), s


# ---------------------------------------------------------------------- the traced energy
class _SingleGraph(dict):  # type: ignore[type-arg]
    """The batch fields of one structure, as the module's graph building reads them."""

    num_graphs = 1


class _EnergyCore(nn.Module):
    """``(positions, cell, node_attrs, species, edge_index, cell_shift) -> (energy [1],
    per-atom energies [N] or [0])``, float64, reference energies included.

    The module is kept out of the submodules (tracing a LightningModule fails outside a
    Trainer); its inference network (the EMA average when EMA is on) and energy target are
    submodules, so the trace holds their weights."""

    def __init__(self, module: AtomisticLightningModule) -> None:
        super().__init__()
        object.__setattr__(self, "_module", module)
        self.network = module.inference_network()
        energy = module.energy_target
        assert energy is not None, "checked by _check_exportable"
        self.energy = energy

    def extra_repr(self) -> str:
        return f"energy of {type(self.network).__name__} ({self.network.num_trainable_weights} weights), float64 out"

    def forward(
        self, positions: torch.Tensor, cell: torch.Tensor, node_attrs: torch.Tensor, species: torch.Tensor,
        edge_index: torch.Tensor, cell_shift: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = _SingleGraph({
            K.POSITIONS: positions, K.CELL: cell, K.NODE_ATTRS: node_attrs, K.SPECIES: species,
            K.EDGE_INDEX: edge_index, K.CELL_SHIFT: cell_shift, K.BATCH: torch.zeros_like(species),
        })
        module: AtomisticLightningModule = self._module  # type: ignore[assignment]
        graph, _, _, _ = module._graph(batch, False, False)  # type: ignore[arg-type]
        readout = Readout(self.network(graph), graph, type(self.network).__name__)
        energy = self.energy.readout(readout).to(torch.float64) + self.energy.offset(readout)
        per_atom = torch.zeros(0, dtype=torch.float64, device=positions.device)
        if OUT_PER_ATOM_GRAPH_SCALARS in readout.raw:
            head = readout.raw[OUT_PER_ATOM_GRAPH_SCALARS][:, self.energy.spec.column]
            per_atom = (self.energy.scale * head + self.energy.shift).to(torch.float64) + self.energy.element_energy[species]
        return energy, per_atom


def _example(module: AtomisticLightningModule, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """A made-up cluster holding every element twice, all within the cutoff of each other: the
    input the energy is traced on (any structure would do; the trace does not depend on it)."""
    slots = module.element_mapping.size
    cutoff = float(module.config.datamodule.cut_off)
    generator = torch.Generator().manual_seed(0)
    n = max(4, 2 * slots)
    species = torch.arange(n) % slots
    direction = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    radius = 0.25 * cutoff * (0.5 + 0.5 * torch.rand(n, 1, generator=generator, dtype=torch.float64))
    positions = direction / torch.linalg.norm(direction, dim=1, keepdim=True) * radius
    edge_index, shifts = neighbour_pairs(positions, torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool),
                                         cutoff, bool(module.config.datamodule.self_interaction))
    node_attrs = torch.eye(slots, dtype=dtype)[species]
    return (positions.to(dtype).to(device), torch.zeros(1, 3, 3, dtype=dtype, device=device), node_attrs.to(device),
            species.to(device), edge_index.to(device), shifts.to(dtype).to(device))


# ---------------------------------------------------------------------- the scripted potential
class ExportedPotential(nn.Module):
    """One structure -> ``{"energy" [] float64 eV, "forces" [N, 3] eV/Å[, "stress" [3, 3] eV/Å³]}``
    (an ensemble adds ``"energy_std"`` and ``"forces_std"``, the spread across members).

    ``forward(positions [N, 3], atomic_numbers [N] int64, cell [3, 3], pbc [3] bool,
    edge_index [2, E] = None, cell_shifts [E, 3] = None, compute_stress = None)``: without
    ``edge_index`` the neighbour list is built here; ``compute_stress`` ``None`` means "when the
    model computes stress and the cell is periodic in all three directions"."""

    lookup: torch.Tensor
    dtype_holder: torch.Tensor

    def __init__(self, cores: list[nn.Module], lookup: torch.Tensor, num_slots: int, cutoff: float,
                 self_interaction: bool, computes_stress: bool, dtype: torch.dtype) -> None:
        super().__init__()
        self.cores = nn.ModuleList(cores)
        self.register_buffer("lookup", lookup)
        self.register_buffer("dtype_holder", torch.zeros(0, dtype=dtype))
        self.num_slots = num_slots
        self.cutoff = cutoff
        self.self_interaction = self_interaction
        self.computes_stress = computes_stress
        self.ensemble = len(cores) > 1

    def extra_repr(self) -> str:
        return (f"{len(self.cores)} member(s), cutoff={self.cutoff} Å, {self.num_slots} element slots, "
                f"dtype={self.dtype_holder.dtype}, stress={self.computes_stress}")

    @torch.jit.export
    def species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Element slots of ``atomic_numbers`` (error naming an element the model does not know)."""
        top = self.lookup.shape[0]
        known = (atomic_numbers >= 0) & (atomic_numbers < top)
        slots = self.lookup[atomic_numbers.clamp(0, top - 1)]
        bad = torch.nonzero(~known | (slots < 0)).flatten()
        if bad.shape[0] > 0:
            z = int(atomic_numbers[bad[0]])
            raise ValueError(f"atomic_numbers: element Z={z} (atom {int(bad[0])}) is not one this model was trained on")
        return slots

    @torch.jit.export
    def energies(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor,
                 cell_shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Member energies ``[M]`` and per-atom energies ``[M, N]`` (``[M, 0]`` when the network
        pools itself), float64, differentiable wrt ``positions`` and ``cell``."""
        dtype = self.dtype_holder.dtype
        node_attrs = torch.nn.functional.one_hot(species, self.num_slots).to(dtype)
        shifts = cell_shifts.to(dtype)
        totals: list[torch.Tensor] = []
        per_atom: list[torch.Tensor] = []
        for core in self.cores:
            total, atoms = core(positions, cell.reshape(1, 3, 3), node_attrs, species, edge_index, shifts)
            totals.append(total.reshape(1))
            per_atom.append(atoms.unsqueeze(0))
        return torch.cat(totals), torch.cat(per_atom)

    def _check(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor) -> None:
        if positions.dim() != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must be [N, 3], got {positions.shape}")
        if positions.dtype != self.dtype_holder.dtype:
            # TorchScript formats a dtype as its enum number: name the two floating types
            wanted = "float64" if self.dtype_holder.dtype == torch.float64 else "float32"
            given = "float64" if positions.dtype == torch.float64 else ("float32" if positions.dtype == torch.float32 else "not float32/float64")
            raise ValueError(f"positions are {given} but this model was exported for {wanted}; convert them or export with "
                             "dtype=...")
        if atomic_numbers.dim() != 1 or atomic_numbers.shape[0] != positions.shape[0]:
            raise ValueError(f"atomic_numbers must be [N] with N = {positions.shape[0]} atoms (positions), got {atomic_numbers.shape}")
        if atomic_numbers.dtype != torch.long:
            raise ValueError(f"atomic_numbers must be int64, got {atomic_numbers.dtype}")
        if cell.dim() != 2 or cell.shape[0] != 3 or cell.shape[1] != 3:
            raise ValueError(f"cell must be [3, 3], got {cell.shape}")
        if pbc.dim() != 1 or pbc.shape[0] != 3 or pbc.dtype != torch.bool:
            raise ValueError(f"pbc must be [3] bool, got {pbc.shape} {pbc.dtype}")
        if bool(pbc.any()):
            periodic = cell.to(torch.float64)[pbc]
            if float(torch.abs(torch.linalg.det(periodic @ periodic.T))) < 1e-12:
                raise ValueError(f"cell has zero volume along the periodic directions (pbc = {pbc})")

    def forward(
        self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
        edge_index: torch.Tensor | None = None, cell_shifts: torch.Tensor | None = None,
        compute_stress: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        self._check(positions, atomic_numbers, cell, pbc)
        species = self.species(atomic_numbers)
        cell = cell.to(self.dtype_holder.dtype)
        fully_periodic = bool(pbc.all())
        if compute_stress is None:
            want_stress = self.computes_stress and fully_periodic
        else:
            want_stress = compute_stress
            if want_stress and not fully_periodic:
                raise ValueError(f"compute_stress=True needs a cell periodic in all three directions (pbc = {pbc})")
        if edge_index is None:
            if cell_shifts is not None:
                raise ValueError("cell_shifts given without edge_index: give both or neither")
            edges, shifts = neighbour_pairs(positions.detach(), cell, pbc, self.cutoff, self.self_interaction)
        else:
            if cell_shifts is None:
                raise ValueError("edge_index given without cell_shifts: give both or neither")
            if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype != torch.long:
                raise ValueError(f"edge_index must be [2, E] int64, got {edge_index.shape} {edge_index.dtype}")
            if cell_shifts.dim() != 2 or cell_shifts.shape[1] != 3 or cell_shifts.shape[0] != edge_index.shape[1]:
                raise ValueError(f"cell_shifts must be [E, 3] with E = {edge_index.shape[1]} edges (edge_index), got {cell_shifts.shape}")
            if edge_index.shape[1] > 0 and (int(edge_index.min()) < 0 or int(edge_index.max()) >= positions.shape[0]):
                raise ValueError(f"edge_index refers to atoms outside 0..N-1 (N = {positions.shape[0]})")
            edges, shifts = edge_index, cell_shifts
        leaf = positions.detach().requires_grad_(True)
        displacement = torch.zeros((3, 3), dtype=leaf.dtype, device=leaf.device).requires_grad_(want_stress)
        strained_positions, strained_cell = leaf, cell
        if want_stress:
            symmetric = 0.5 * (displacement + displacement.T)
            strained_positions = leaf + leaf @ symmetric
            strained_cell = cell + cell @ symmetric
        totals, _ = self.energies(strained_positions, species, strained_cell, edges, shifts)
        forces: list[torch.Tensor] = []
        stresses: list[torch.Tensor] = []
        members = totals.shape[0]
        for m in range(members):
            inputs = [leaf, displacement] if want_stress else [leaf]
            grads = torch.autograd.grad([totals[m]], inputs, retain_graph=m + 1 < members, allow_unused=True)
            gradient = grads[0]
            forces.append(-gradient if gradient is not None else torch.zeros_like(leaf))
            if want_stress:
                virial = grads[1]
                volume = torch.abs(torch.linalg.det(cell))
                stresses.append(virial / volume if virial is not None else torch.zeros_like(cell))
        totals = totals.detach()
        stacked = torch.stack(forces)
        stacked = stacked.detach()
        out: dict[str, torch.Tensor] = {"energy": totals.mean(), "forces": stacked.mean(dim=0)}
        if want_stress:
            out["stress"] = torch.stack(stresses).mean(dim=0).detach()
        if self.ensemble:
            out["energy_std"] = totals.std()
            out["forces_std"] = stacked.std(dim=0)
        return out


# ---------------------------------------------------------------------- building and writing
def _modules(model: Any) -> list[AtomisticLightningModule]:
    members = getattr(model, "members", None)
    models = list(members) if members is not None else [model]
    return [m if isinstance(m, AtomisticLightningModule) else m._require_module() for m in models]


def _check_exportable(module: AtomisticLightningModule) -> None:
    """Refuse, before any tracing, what an exported model of ``(positions, atomic_numbers,
    cell, pbc)`` cannot compute."""
    dm = module.config.datamodule
    if dm.atom_features or dm.bond_features:
        raise ConfigError("export: models with RDKit atom or bond features (datamodule.atom_features / bond_features) "
                          "need molecules, which the exported model (positions and atomic numbers) does not receive")
    if dm.graph_attrs_cols:
        raise ConfigError(f"export: models with graph attributes (datamodule.graph_attrs_cols = {dm.graph_attrs_cols}) "
                          "need per-structure inputs that the exported model does not take")
    if module.energy_target is None:
        raise ConfigError("export: the model has no energy target (y_graph_scalars with energy), and the exported "
                          "model gives energy, forces and stress")


def build_potential(model: Any, *, dtype: str | None = None, device: str = "cpu") -> ExportedPotential:
    """The (not yet scripted) :class:`ExportedPotential` of a model or an ensemble, its energy
    traced. Checks come first: nothing is traced for a model that cannot be exported."""
    modules = _modules(model)
    for module in modules:
        _check_exportable(module)
    from .potential import prepared_module

    target_device = torch.device(device)
    prepared = [prepared_module(module, target_device, dtype) for module in modules]
    first = prepared[0]
    model_dtype = first.model_dtype
    cores: list[nn.Module] = []
    for module in prepared:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        core = _EnergyCore(module)
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer warns about every Python number it meets; the families keep sizes as
            # shapes, and the tests check the trace on other sizes and compositions
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*is deprecated", category=DeprecationWarning)
            traced = torch.jit.trace(core, _example(module, model_dtype, target_device), check_trace=False)
        cores.append(traced)
    dm = first.config.datamodule
    stress = any(isinstance(t, Stress) for t in first.all_targets)
    lookup = torch.as_tensor(first.element_mapping.lookup_table(), dtype=torch.long, device=target_device)
    return ExportedPotential(cores, lookup, first.element_mapping.size, float(dm.cut_off), bool(dm.self_interaction),
                             stress, model_dtype)


def write_atomically(path: Path, save: Any) -> Path:
    """``save(temporary)`` then rename to ``path``: a crash never leaves a half-written model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_leftovers(path.parent, hidden=True)
    tmp = path.with_name(temporary_name(f".{path.name}"))
    try:
        save(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def export_model(model: Any, path: str | Path, format: str = "torchscript", *, dtype: str | None = None,
                 device: str = "cpu") -> Path:
    """Write ``model`` (or an ensemble) to ``path`` as ``format`` (``"torchscript"``, ``"aoti"``
    or ``"metatomic"``); see ``docs/export.md``."""
    if format not in FORMATS:
        raise ConfigError(f"export: format must be one of {FORMATS}, got {format!r}")
    if dtype is not None and dtype not in ("float32", "float64"):
        raise ConfigError(f"export: dtype must be 'float32' or 'float64', got {dtype!r}")
    path = Path(path)
    if format in ("metatomic", "aoti"):
        # through the engine table: both writers import this module (no import cycle)
        from ..training.extensions import engine

        return engine(format)(model, path, dtype=dtype, device=device)  # type: ignore[no-any-return]
    torch_dtype(dtype or "float32")  # validated above; keeps the one dtype table
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is deprecated", category=DeprecationWarning)
        scripted = torch.jit.script(build_potential(model, dtype=dtype, device=device))
    return write_atomically(path, lambda name: _quiet_save(scripted, name))


def _quiet_save(scripted: Any, name: str) -> None:
    """``torch.jit.save`` (which warns that TorchScript is deprecated in favour of torch.export;
    docs/export.md says why the file is TorchScript)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is deprecated", category=DeprecationWarning)
        torch.jit.save(scripted, name)
