"""``model.export(path, format="aoti")``: energy, forces and stress compiled ahead of time to
native code by AOTInductor, in one ``.pt2`` package that ``torch._inductor.aoti_load_package``
alone runs, in a process where ``physicsml_like`` is not installed.

What it buys: on the 108-atom copper MACE of ``benchmarks/md_step.py`` the compiled package
takes a third of the TorchScript file's time a step (the fused elementwise kernels and the
backward of the forces in one native graph; numbers in ``benchmarks/results/md_step.md``).

How it is built: the whole computation of a structure (element slots, one-hot attributes,
strain, each member's energy and its gradients with respect to positions and strain) is recorded
by ``make_fx`` as one graph of ATen operations with symbolic sizes for the atoms and the edges,
so the force pass is part of the graph and AOTInductor needs no autograd at run time. Two
changes make that graph compile on the CPU: the networks take their plain-operation paths
(:func:`physicsml_like.nn.capture.capturing`), and ``index_add`` (the backward of every gather)
is recorded as ``scatter_add`` with an expanded index, which the CPU code generator hands to
ATen's kernel (inductor's own vectorised atomic-add code for ``index_add`` fails to generate on
this torch, and its proxy call for ``index_add`` fails at run time).

The package takes the caller's neighbour list (engines build their own; ``docs/export.md``
shows vesin for ASE): ``(positions [N, 3], atomic_numbers [N] int64, cell [3, 3], pbc [3] bool,
edge_index [2, E] int64, cell_shifts [E, 3])`` -> ``{"energy" [] float64, "forces" [N, 3][,
"stress" [3, 3]][, "energy_std", "forces_std"]}``.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..errors import ConfigError
from ..nn.builder import torch_dtype
from ..nn.capture import capturing
from ..targets import Stress
from .export import _check_exportable, _EnergyCore, _modules, neighbour_pairs, write_atomically

__all__ = ["CompiledPotential", "export_aoti"]

aten = torch.ops.aten
INPUTS = ("positions", "atomic_numbers", "cell", "pbc", "edge_index", "cell_shifts")


# ---------------------------------------------------------------------- the recorded function
class CompiledPotential(nn.Module):
    """The function the package holds: one structure and its neighbour list -> energy, forces
    (and stress, and the ensemble's spread). Eager, it is what is recorded; the tests also call
    it directly to tell the recording's errors from the compiler's."""

    lookup: torch.Tensor

    def __init__(self, cores: list[_EnergyCore], lookup: torch.Tensor, num_slots: int, computes_stress: bool,
                 dtype: torch.dtype) -> None:
        super().__init__()
        self.cores = nn.ModuleList(cores)
        self.register_buffer("lookup", lookup)
        self.num_slots = num_slots
        self.computes_stress = computes_stress
        self.dtype = dtype
        self.metadata: dict[str, str] = {}  # what the package's get_metadata() gives an engine

    def extra_repr(self) -> str:
        return f"{len(self.cores)} member(s), {self.num_slots} element slots, dtype={self.dtype}, stress={self.computes_stress}"

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                edge_index: torch.Tensor, cell_shifts: torch.Tensor) -> dict[str, torch.Tensor]:
        # checked in the graph, before any gather: an index out of range inside a compiled kernel
        # ends the process instead of raising
        inside = ((edge_index >= 0) & (edge_index < positions.shape[0])).all()
        torch._assert_async(inside, "edge_index: an atom index outside 0..N-1 (N = the rows of positions)")
        top = self.lookup.shape[0]
        slots = self.lookup[atomic_numbers.clamp(0, top - 1)]
        known = (atomic_numbers >= 0) & (atomic_numbers < top) & (slots >= 0)
        torch._assert_async(known.all(), "atomic_numbers: an element this model was not trained on")
        species = slots.clamp_min(0)
        node_attrs = nn.functional.one_hot(species, self.num_slots).to(self.dtype)
        shifts = cell_shifts.to(self.dtype)
        leaf = positions.detach().requires_grad_(True)
        displacement = torch.zeros((3, 3), dtype=self.dtype, device=positions.device).requires_grad_(self.computes_stress)
        strained_positions, strained_cell = leaf, cell
        if self.computes_stress:
            symmetric = 0.5 * (displacement + displacement.T)
            strained_positions = leaf + leaf @ symmetric
            strained_cell = cell + cell @ symmetric
        energies: list[torch.Tensor] = []
        forces: list[torch.Tensor] = []
        virials: list[torch.Tensor] = []
        for m, core in enumerate(self.cores):
            total, _ = core(strained_positions, strained_cell.reshape(1, 3, 3), node_attrs, species, edge_index, shifts)
            inputs = [leaf, displacement] if self.computes_stress else [leaf]
            grads = torch.autograd.grad([total.sum()], inputs, retain_graph=m + 1 < len(self.cores))
            energies.append(total.reshape(1).detach())  # [1] rows: a stack of 0-d tensors does not lower
            forces.append(-grads[0])
            if self.computes_stress:
                virials.append(grads[1])
        energy = torch.cat(energies)
        force = torch.stack(forces)
        out = {"energy": energy.mean(), "forces": force.mean(dim=0)}
        if self.computes_stress:
            periodic = pbc.all()
            volume = torch.where(periodic, torch.abs(torch.linalg.det(cell)), torch.ones((), dtype=cell.dtype))
            out["stress"] = torch.where(periodic, torch.stack(virials).mean(dim=0) / volume, torch.zeros_like(cell))
        if len(self.cores) > 1:
            out["energy_std"] = energy.std()
            out["forces_std"] = force.std(dim=0)
        return out


def _expanded(index: torch.Tensor, source: torch.Tensor, dim: int) -> torch.Tensor:
    shape = [1] * source.dim()
    shape[dim] = -1
    return index.view(shape).expand_as(source)


def _index_add(x: torch.Tensor, dim: int, index: torch.Tensor, source: torch.Tensor, alpha: float = 1) -> torch.Tensor:
    dim = dim % max(source.dim(), 1)
    source = source if alpha == 1 else source * alpha
    return torch.scatter_add(x, dim, _expanded(index, source, dim), source)


def _index_add_(x: torch.Tensor, dim: int, index: torch.Tensor, source: torch.Tensor, alpha: float = 1) -> torch.Tensor:
    dim = dim % max(source.dim(), 1)
    source = source if alpha == 1 else source * alpha
    return x.scatter_add_(dim, _expanded(index, source, dim), source)


# index_add as scatter_add: see the module docstring
_RECORDING = {aten.index_add.default: _index_add, aten.index_add_.default: _index_add_}


def _example(potential: CompiledPotential, elements: list[int], cutoff: float, self_interaction: bool,
             device: torch.device) -> tuple[torch.Tensor, ...]:
    """A periodic made-up structure holding every element, with sizes that match no other
    dimension of the graph (the recorder would otherwise take a size equal to, say, 3 for the
    same symbol as the 3 of the coordinates)."""
    n = max(11, 2 * len(elements) + 3)
    generator = torch.Generator().manual_seed(0)
    side = 0.9 * cutoff
    cell = torch.diag(torch.tensor([side, 1.1 * side, 1.2 * side], dtype=torch.float64))
    positions = torch.rand(n, 3, generator=generator, dtype=torch.float64) @ cell
    numbers = torch.tensor([elements[k % len(elements)] for k in range(n)], dtype=torch.long)
    pbc = torch.ones(3, dtype=torch.bool)
    edge_index, shifts = neighbour_pairs(positions, cell, pbc, cutoff, self_interaction)
    dtype = potential.dtype
    return (positions.to(dtype).to(device), numbers.to(device), cell.to(dtype).to(device), pbc.to(device),
            edge_index.to(device), shifts.to(device))


def compiled_potential(model: Any, *, dtype: str | None = None, device: str = "cpu") -> tuple[CompiledPotential, tuple[torch.Tensor, ...]]:
    """The eager :class:`CompiledPotential` of a model or an ensemble, and the example it is
    recorded on. Checks come first: nothing is recorded for a model that cannot be exported."""
    modules = _modules(model)
    for module in modules:
        _check_exportable(module)
    from .potential import prepared_module

    target = torch.device(device)
    prepared = [prepared_module(module, target, dtype) for module in modules]
    cores = []
    for module in prepared:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        cores.append(_EnergyCore(module))
    first = prepared[0]
    lookup = torch.as_tensor(first.element_mapping.lookup_table(), dtype=torch.long, device=target)
    stress = any(isinstance(t, Stress) for t in first.all_targets)
    potential = CompiledPotential(cores, lookup, first.element_mapping.size, stress, first.model_dtype)
    dm = first.config.datamodule
    elements = list(first.element_mapping.elements or ())
    if not elements:
        raise ConfigError("export: format='aoti' needs the model's elements (element_mapping.elements); this model has none")
    potential.metadata = {
        "inputs": ", ".join(INPUTS), "outputs": "energy, forces" + (", stress" if stress else "")
        + (", energy_std, forces_std" if len(cores) > 1 else ""),
        "units": "energy eV, lengths Å, forces eV/Å, stress eV/Å³", "dtype": str(first.model_dtype).removeprefix("torch."),
        "cutoff": repr(float(dm.cut_off)), "self_interaction": str(bool(dm.self_interaction)).lower(),
        "elements": ",".join(map(str, elements)), "members": str(len(cores)), "package": f"physicsml_like {__version__}",
    }
    example = _example(potential, elements, float(dm.cut_off), bool(dm.self_interaction), target)
    return potential, example


def record(potential: CompiledPotential, example: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """``potential`` as an exported program with the atoms and edges as symbolic sizes."""
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    with capturing(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is deprecated", category=DeprecationWarning)
        graph = make_fx(potential, decomposition_table=_RECORDING, tracing_mode="symbolic",
                        _allow_non_fake_inputs=True)(*example)
    atoms, edges = Dim("atoms", min=2), Dim("edges", min=3)
    shapes = ({0: atoms}, {0: atoms}, None, None, {1: edges}, {0: edges})
    with torch.no_grad():
        return torch.export.export(graph, example, dynamic_shapes=shapes, strict=False)


_CHECKS_OFF_UNLESS_ASKED = "env_var_value != nullptr && env_var_value[0] != '0'"
_CHECKS_ON_UNLESS_OFF = "env_var_value == nullptr || env_var_value[0] != '0'"


@contextlib.contextmanager
def _input_checks_on() -> Iterator[list[int]]:
    """Compile with AOTInductor's own input checks (dtype, static sizes, size ranges, strides,
    device) on by default, each error naming the argument.

    AOTInductor generates these checks in every package but runs them only when the process sets
    ``AOTI_RUNTIME_CHECK_INPUTS=1``; without them a float32 array given to a float64 package is
    read as float64 and gives a wrong energy without an error. The generated source is edited
    while it is written: the condition reversed (``AOTI_RUNTIME_CHECK_INPUTS=0`` turns them
    off) and ``input_handles[k]`` replaced by the argument's name. Yields a list that receives
    the number of edits; zero means this torch writes the checks differently."""
    from torch._inductor.codegen.cpp_wrapper_cpu import CppWrapperCpu

    original = CppWrapperCpu.generate_input_output_runtime_checks
    edits: list[int] = []

    def generate(self: Any) -> None:
        original(self)
        buffer = getattr(self.prefix, "aot", self.prefix)  # a dual (JIT and AOT) buffer or the AOT one
        lines = buffer._lines
        count = 0
        for k, line in enumerate(lines):
            if not isinstance(line, str):
                continue
            edited = line.replace(_CHECKS_OFF_UNLESS_ASKED, _CHECKS_ON_UNLESS_OFF)
            for index, name in enumerate(INPUTS):
                edited = edited.replace(f'"input_handles[{index}]: ', f'"{name} (input {index}): ')
            if edited != line:
                lines[k] = edited
                count += 1
        edits.append(count)

    CppWrapperCpu.generate_input_output_runtime_checks = generate  # type: ignore[method-assign]
    try:
        yield edits
    finally:
        CppWrapperCpu.generate_input_output_runtime_checks = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _no_size_bounds_from_matmuls() -> Iterator[None]:
    """Compile without inductor's CPU decompositions of small ``mm``, ``bmm`` and ``addmm``.

    They decide "small" on the recorded sizes (``numel <= 32``, ``size <= 16``) and, compiling
    ahead of time, turn the decision into a bound on the package's inputs: a one-element model
    (``[N, 1] @ [1, 16]`` embeds the atoms) recorded on 11 atoms refused 108. ATen's kernels
    serve these products at any size."""
    from torch._inductor import decomposition

    table = decomposition.decompositions
    removed = {op: table.pop(op) for op in (aten.mm.default, aten.bmm.default, aten.addmm.default) if op in table}
    try:
        yield
    finally:
        table.update(removed)


def _self_check(path: Path, potential: CompiledPotential, example: tuple[torch.Tensor, ...], cutoff: float,
                self_interaction: bool) -> None:
    """Run the written package on a structure 8x the example's size and compare it with the
    eager computation: a size bound or a wrong kernel is found here, not in a user's MD run."""
    positions, numbers, cell, pbc = example[:4]
    images = torch.cartesian_prod(*[torch.arange(2)] * 3).to(cell.dtype)
    big_positions = (positions.unsqueeze(0) + (images @ cell).unsqueeze(1)).reshape(-1, 3)
    big_cell = 2 * cell
    edge_index, shifts = neighbour_pairs(big_positions.to(torch.float64), big_cell.to(torch.float64), pbc, cutoff, self_interaction)
    args = (big_positions, numbers.repeat(8), big_cell, pbc, edge_index, shifts)
    try:
        with open(path, "rb") as handle:  # a handle: the temporary's name does not end in .pt2
            run = torch._inductor.aoti_load_package(handle)
        got = run(*args)
    except RuntimeError as error:
        raise RuntimeError(f"export: the compiled package refused a structure of {len(big_positions)} atoms and "
                           f"{edge_index.shape[1]} edges ({error}); use format='torchscript'") from error
    want = potential(*args)
    tolerance = 1e-6 if potential.dtype == torch.float64 else 1e-3
    for key, value in want.items():
        difference = float((got[key].double() - value.double()).abs().max())
        if difference > tolerance * max(1.0, float(value.double().abs().max())):
            raise RuntimeError(f"export: the compiled package's {key} differs from the model's by {difference:.3g} on a "
                               f"structure of {len(big_positions)} atoms; use format='torchscript'")


def export_aoti(model: Any, path: Path, *, dtype: str | None = None, device: str = "cpu") -> Path:
    """Write ``model`` (or an ensemble) to ``path`` as an AOTInductor package (see the module
    docstring); needs a C++ compiler on the exporting machine, not on the one that runs it."""
    if device != "cpu":
        raise ConfigError(f"export: format='aoti' is compiled for the CPU (device='cpu'), got device={device!r}; "
                          "use format='torchscript' for other devices")
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        raise ConfigError("export: format='aoti' compiles C++ and found no compiler (c++, g++ or clang++) on PATH")
    torch_dtype(dtype or "float32")
    potential, example = compiled_potential(model, dtype=dtype, device=device)
    program = record(potential, example)

    def save(name: str) -> None:
        with open(name, "w+b") as handle, _input_checks_on() as edits, _no_size_bounds_from_matmuls():
            # a handle: torch wants a path to end in .pt2, the temporary's does not
            try:
                torch._inductor.aoti_compile_and_package(
                    program, package_path=handle, inductor_configs={"aot_inductor.metadata": potential.metadata})
            except Exception as error:  # inductor's own failure, named with what to use instead
                raise RuntimeError(f"export: AOTInductor could not compile this model ({type(error).__name__}: "
                                   f"{str(error).splitlines()[0][:300]}); use format='torchscript'") from error
        _self_check(Path(name), potential, example, float(potential.metadata["cutoff"]),
                    potential.metadata["self_interaction"] == "true")
        if not any(edits):
            warnings.warn("export: this torch writes AOTInductor's input checks differently; the package checks its "
                          "inputs only when AOTI_RUNTIME_CHECK_INPUTS=1 is set", RuntimeWarning, stacklevel=3)

    return write_atomically(path, save)
