"""OpenMM through openmm-ml: ``MLPotential("physicsml_like", model_path=...)``.

A physicsml user's script changes only the name: the arguments are physicsml's (``model_path``,
``output_scaling``, ``position_scaling``, ``device``, ``precision``, ``y_output``), and
``createSystem(topology)`` and ``createMixedSystem(topology, mm_system, ml_atoms)`` are
openmm-ml's. The force is an adapter over
:class:`~physicsml_like.integrations.potential.Potential`, the one inference path, and converts
units and layouts only: OpenMM's nm and kJ/mol to the model's Å and eV and back.

Two ways to put the model into a System, chosen when the force is made and stated in the log:

- ``openmm.PythonForce`` (OpenMM >= 8.3) calls :class:`Potential` from Python at every step.
  It runs wherever OpenMM runs, with any model.
- ``openmmtorch.TorchForce``, when openmm-torch is importable and the model exports to
  TorchScript: the exported module, wrapped to take nm and give kJ/mol, runs inside OpenMM
  (no Python per step, and on the GPU with OpenMM's CUDA platform).

openmm-ml finds the potential through the entry point ``openmmml.potentials`` of an installed
package; importing this module registers it too (``MLPotential.registerImplFactory``), so it is
found from a source checkout as well.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import openmm
import openmm.app
import torch
from openmm import unit
from openmmml.mlpotential import MLPotential, MLPotentialImpl, MLPotentialImplFactory

from .._logging import get_logger
from ..errors import ConfigError, DataError
from ..training.wrapper import load_model
from .potential import Potential

__all__ = [
    "EV_IN_KJ_PER_MOL",
    "NM_IN_ANGSTROM",
    "PhysicsMLLikePotentialImpl",
    "PhysicsMLLikePotentialImplFactory",
    "TorchForceModule",
    "openmm_topology",
]

NAME = "physicsml_like"
#: 1 eV in kJ/mol (CODATA 2014, the value ASE uses): the default ``output_scaling``
EV_IN_KJ_PER_MOL = 96.48533212331002
#: 1 nm in Å: the default ``position_scaling``
NM_IN_ANGSTROM = 10.0

Backend = Literal["auto", "python", "torch"]
_PRECISIONS = {"32": "float32", "64": "float64", "float32": "float32", "float64": "float64"}

_log = get_logger(__name__)


def _precision(value: Any) -> str | None:
    """physicsml's ``"32"``/``"64"`` (or ``32``, ``"float64"``, ...) as a dtype name;
    ``None`` keeps the model's own precision."""
    if value is None:
        return None
    name = _PRECISIONS.get(str(value))
    if name is None:
        raise ConfigError(f"precision must be one of '32', '64' (or 'float32', 'float64', None), got {value!r}")
    return name


class PhysicsMLLikePotentialImplFactory(MLPotentialImplFactory):
    """Makes the implementation behind ``MLPotential("physicsml_like", ...)``."""

    def createImpl(self, name: str, **args: Any) -> MLPotentialImpl:
        return PhysicsMLLikePotentialImpl(name, **args)


class PhysicsMLLikePotentialImpl(MLPotentialImpl):
    """A trained model as an openmm-ml potential.

    Parameters
    ----------
    model_path: a folder written by ``model.save(path)``.
    model: instead of ``model_path``, a trained model in memory (not in physicsml).
    output_scaling: model energy unit -> kJ/mol; default 1 eV in kJ/mol (96.485...). physicsml's
        models have no fixed unit, so its default is 1.0; ours are trained in eV and Å.
    position_scaling: nm -> model length unit; default 10.0 (Å). physicsml's default is 1.0.
    device: where the model runs (``"cpu"``, ``"cuda"``), as in physicsml.
    precision: ``"64"`` (default: energy-conserving dynamics, as physicsml documents) or ``"32"``;
        ``None`` keeps the model's own precision.
    y_output: the energy target the forces derive from; default the model's energy target.
    backend: ``"auto"`` (TorchForce when openmm-torch is importable and the model exports to
        TorchScript, else PythonForce), ``"python"`` or ``"torch"``.
    """

    def __init__(
        self,
        name: str = NAME,
        model_path: str | Path | None = None,
        *,
        model: Any = None,
        output_scaling: float | None = None,
        position_scaling: float | None = None,
        device: str = "cpu",
        precision: str | int | None = "64",
        y_output: str | None = None,
        backend: Backend = "auto",
        **unknown: Any,
    ) -> None:
        unsupported = sorted(set(unknown) & {"repo_url", "rev", "model_path_in_repo"})
        if unsupported:
            raise ConfigError(f"{', '.join(unsupported)}: models in DVC repositories are not supported; "
                              "give model_path, a folder written by model.save(path)")
        if unknown:
            raise ConfigError(f"unknown argument(s) of MLPotential({name!r}): {', '.join(sorted(unknown))}")
        if (model_path is None) == (model is None):
            raise ConfigError(f"MLPotential({name!r}) needs exactly one of model_path (a saved model folder) or model")
        if backend not in ("auto", "python", "torch"):
            raise ConfigError(f"backend must be 'auto', 'python' or 'torch', got {backend!r}")
        self.name = name
        self.model_path = None if model_path is None else Path(model_path)
        self.model = load_model(self.model_path) if self.model_path is not None else model
        self.output_scaling = EV_IN_KJ_PER_MOL if output_scaling is None else float(output_scaling)
        self.position_scaling = NM_IN_ANGSTROM if position_scaling is None else float(position_scaling)
        self.device = str(device)
        self.precision = _precision(precision)
        self.backend: Backend = backend
        # built once here: it checks that the model can run without molecules (no RDKit features)
        self.potential = Potential(self.model, device=self.device, dtype=self.precision)
        self.energy_key = self._energy_key(y_output)
        forces = [n for n, kind in self.potential.target_names().items() if kind == "forces"]
        if not forces:
            raise ConfigError("OpenMM needs forces: the model was trained without compute_forces=True")
        self.forces_key = forces[0]

    def _energy_key(self, y_output: str | None) -> str:
        energy = self.potential.energy_key
        if energy is None:
            raise ConfigError("OpenMM needs a model with an energy target")
        if y_output is not None and y_output != energy:
            raise ConfigError(f"y_output={y_output!r}: the forces derive from the energy target {energy!r}; "
                              "leave y_output out or give that name")
        return energy

    def getMLLongRange(self) -> bool:
        """The model is local (a cutoff), so the mechanical embedding keeps the MM force field's
        long-range electrostatics between ML atoms in different periodic images."""
        return False

    # ------------------------------------------------------------------ forces
    def addForces(
        self,
        topology: openmm.app.Topology,
        system: openmm.System,
        atoms: Iterable[int] | None,
        forceGroup: int,
        filename: str | None = None,
        **args: Any,
    ) -> None:
        """Adds the model's force for ``atoms`` (all when ``None``) to ``system``.

        ``filename``: where the TorchForce path writes the wrapped TorchScript model (as in
        physicsml); by default a temporary file.
        """
        indices = None if atoms is None else [int(i) for i in atoms]
        numbers = self.atomic_numbers(topology, indices)
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        backend = self._choose_backend()
        if backend == "torch":
            force: openmm.Force = self._torch_force(numbers, indices, periodic, system.getNumParticles(), filename)
        else:
            force = openmm.PythonForce(_Computation(self, numbers, periodic))
            force.setUsesPeriodicBoundaryConditions(periodic)
            if indices is not None:
                force.setParticles(indices)
        force.setForceGroup(forceGroup)
        force.setName(f"{NAME} ({backend})")
        system.addForce(force)

    def atomic_numbers(self, topology: openmm.app.Topology, indices: list[int] | None) -> np.ndarray:
        """The atomic numbers of the ML atoms; an atom without an element, or of an element the
        model does not know, is named (index, name, residue) in the error."""
        all_atoms = list(topology.atoms())
        chosen = all_atoms if indices is None else [all_atoms[i] for i in indices]
        known = set(self.potential.atomic_numbers)
        for atom in chosen:
            where = f"atom {atom.index} ({atom.name!r} of residue {atom.residue.name} {atom.residue.id})"
            if atom.element is None:
                raise DataError(f"{where} has no element; the model needs the element of every ML atom",
                                field="topology")
            if atom.element.atomic_number not in known:
                names = ", ".join(openmm.app.Element.getByAtomicNumber(z).symbol for z in sorted(known))
                raise DataError(f"{where} is {atom.element.symbol}, an element the model was not trained on "
                                f"(it knows {names})", field="topology")
        return np.array([atom.element.atomic_number for atom in chosen], dtype=np.int64)

    def _choose_backend(self) -> str:
        has_torch_force = importlib.util.find_spec("openmmtorch") is not None
        exports = hasattr(self.model, "export")
        if self.backend == "torch":
            if not has_torch_force:
                raise ConfigError("backend='torch' needs openmm-torch (conda install -c conda-forge openmm-torch)")
            if not exports:
                raise ConfigError("backend='torch' needs a model with export(path, format='torchscript')")
            choice, why = "torch", "asked for"
        elif self.backend == "python":
            choice, why = "python", "asked for"
        elif has_torch_force and exports:
            choice, why = "torch", "openmm-torch is installed"
        else:
            choice = "python"
            why = "openmm-torch is not installed" if not has_torch_force else "the model does not export to TorchScript"
        _log.info("%s in OpenMM through %s (%s)", NAME, "TorchForce" if choice == "torch" else "PythonForce", why)
        return choice

    def _torch_force(self, numbers: np.ndarray, indices: list[int] | None, periodic: bool, n_particles: int,
                     filename: str | None) -> openmm.Force:
        """The exported TorchScript model inside a :class:`TorchForceModule`, as a TorchForce.
        Not exercised where openmm-torch cannot be installed (its CPU wheel needs torch < 2.13)."""
        import openmmtorch  # an optional conda package

        with tempfile.TemporaryDirectory() as folder:
            exported = self.model.export(Path(folder) / "model.pt", format="torchscript")
            path = exported if isinstance(exported, str | Path) else Path(folder) / "model.pt"
            inner = torch.jit.load(str(path), map_location=self.device)
        dtype = self.potential.dtype
        wrapper = TorchForceModule(inner, numbers, indices, n_particles, periodic, self.position_scaling,
                                   self.output_scaling, dtype)
        scripted = torch.jit.script(wrapper.to(self.device))
        target = filename or str(Path(tempfile.mkdtemp()) / "physicsml_like_openmm.pt")
        scripted.save(target)
        force = openmmtorch.TorchForce(target)
        force.setOutputsForces(True)
        force.setUsesPeriodicBoundaryConditions(periodic)
        return force


class _Computation:
    """PythonForce's function: OpenMM State (nm) -> (kJ/mol, kJ/mol/nm) through :class:`Potential`.

    It pickles (OpenMM serialises a PythonForce by pickling its function) without the loaded
    network when the model came from a path: the path and settings are enough to rebuild it.
    """

    def __init__(self, impl: PhysicsMLLikePotentialImpl, numbers: np.ndarray, periodic: bool) -> None:
        self.model_path = impl.model_path
        self.model = impl.model if impl.model_path is None else None
        self.device, self.precision = impl.device, impl.precision
        self.potential: Potential | None = impl.potential
        self.numbers = numbers
        self.periodic = periodic
        self.position_scaling = impl.position_scaling
        self.output_scaling = impl.output_scaling
        self.energy_key, self.forces_key = impl.energy_key, impl.forces_key
        self.pbc = np.full(3, periodic)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.model_path is not None:
            state["potential"] = None
        return state

    def __call__(self, state: openmm.State) -> tuple[float, np.ndarray]:
        if self.potential is None:
            model = load_model(self.model_path) if self.model_path is not None else self.model
            self.potential = Potential(model, device=self.device, dtype=self.precision)
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer) * self.position_scaling
        if self.periodic:
            cell = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)) * self.position_scaling
        else:
            cell = np.zeros((3, 3))
        out = self.potential(positions, self.numbers, cell, self.pbc)
        energy = float(out[self.energy_key].sum()) * self.output_scaling
        forces = out[self.forces_key].double().numpy() * (self.output_scaling * self.position_scaling)
        return energy, forces


class TorchForceModule(torch.nn.Module):
    """An exported TorchScript model for openmm-torch's TorchForce: positions (all particles,
    nm) and box vectors (nm) in, energy (kJ/mol) and forces (kJ/mol/nm) out.

    ``inner`` is ``model.export(path, format="torchscript")``'s module:
    ``forward(positions [N, 3] Å, atomic_numbers [N], cell [3, 3] Å, pbc [3]) -> {"energy", "forces"}``.
    Only the ML atoms (``indices``) go in; their forces are scattered back, zero elsewhere.
    """

    def __init__(self, inner: torch.nn.Module, numbers: np.ndarray, indices: list[int] | None, n_particles: int,
                 periodic: bool, position_scaling: float, output_scaling: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.numbers: torch.Tensor
        self.indices: torch.Tensor
        self.pbc: torch.Tensor
        self.register_buffer("numbers", torch.as_tensor(numbers, dtype=torch.long))
        chosen = range(n_particles) if indices is None else indices
        self.register_buffer("indices", torch.as_tensor(list(chosen), dtype=torch.long))
        self.register_buffer("pbc", torch.full((3,), bool(periodic)))
        self.n_particles = int(n_particles)
        self.periodic = bool(periodic)
        self.position_scaling = float(position_scaling)
        self.output_scaling = float(output_scaling)
        self.dtype = dtype

    def extra_repr(self) -> str:
        return (f"{len(self.indices)} of {self.n_particles} particles, periodic={self.periodic}, "
                f"nm x {self.position_scaling:g} -> model, model x {self.output_scaling:g} -> kJ/mol")

    def forward(self, positions: torch.Tensor, boxvectors: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = positions.index_select(0, self.indices).to(self.dtype) * self.position_scaling
        if self.periodic and boxvectors is not None:
            cell = boxvectors.to(self.dtype) * self.position_scaling
        else:
            cell = torch.zeros((3, 3), dtype=self.dtype, device=positions.device)
        out = self.inner(chosen, self.numbers, cell, self.pbc)
        energy = out["energy"].sum() * self.output_scaling
        forces = torch.zeros_like(positions).index_copy(
            0, self.indices, (out["forces"] * (self.output_scaling * self.position_scaling)).to(positions.dtype))
        return energy.to(positions.dtype), forces


def openmm_topology(atoms: Any) -> tuple[openmm.app.Topology, unit.Quantity]:
    """An OpenMM Topology (one residue, one chain) and positions (nm) of an :class:`ase.Atoms`,
    to run a structure that has no PDB file.

    A fully periodic cell becomes the topology's box. OpenMM wants boxes in its reduced
    lower-triangular form, so a periodic structure is rotated into it (``cell.standard_form()``):
    the positions returned, and the forces OpenMM reports, are in that rotated frame.
    """
    from openmm.app.internal.unitcell import reducePeriodicBoxVectors

    topology = openmm.app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for index, number in enumerate(atoms.numbers):
        element = openmm.app.Element.getByAtomicNumber(int(number))
        topology.addAtom(f"{element.symbol}{index}", element, residue)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if all(atoms.pbc):
        box, rotation = atoms.cell.standard_form()
        positions = positions @ rotation.T
        topology.setPeriodicBoxVectors(reducePeriodicBoxVectors(np.asarray(box) / NM_IN_ANGSTROM))
    elif any(atoms.pbc):
        raise DataError("OpenMM boxes are periodic in all three directions or none; this structure's pbc is "
                        f"{list(map(bool, atoms.pbc))}", field="pbc")
    return topology, positions / NM_IN_ANGSTROM * unit.nanometer


MLPotential.registerImplFactory(NAME, PhysicsMLLikePotentialImplFactory())
