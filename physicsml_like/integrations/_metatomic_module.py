# ruff: noqa: UP006, UP045  (metatomic checks these typing annotations; TorchScript classes have no |)
"""The module metatomic scripts and saves (imported only with metatomic installed; see
:mod:`physicsml_like.integrations.metatomic`)."""


from typing import Dict, List, Optional  # noqa: UP035 (metatomic checks these annotations)

import torch
from torch import nn

from ._index_select import unpatched_index_select
from .export import ExportedPotential

with unpatched_index_select():  # metatensor scripts its functions on import
    from metatensor.torch import Labels, TensorBlock, TensorMap
    from metatomic.torch import ModelOutput, NeighborListOptions, System

__all__ = ["MetatomicPotential"]


class MetatomicPotential(nn.Module):
    """metatomic's model interface around an :class:`ExportedPotential`."""

    def __init__(self, potential: ExportedPotential) -> None:
        super().__init__()
        self.potential = potential
        self.options = NeighborListOptions(cutoff=potential.cutoff, full_list=True, strict=True)
        self.ensemble = potential.ensemble
        self.self_interaction = potential.self_interaction

    @torch.jit.unused
    def extra_repr(self) -> str:
        return (f"metatomic model: full neighbour list at {self.options.cutoff} Å"
                + (", ensemble mean and uncertainty" if self.ensemble else ""))

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.options]

    def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels] = None) -> Dict[str, TensorMap]:
        per_atom = False
        if "energy" in outputs:
            per_atom = outputs["energy"].sample_kind == "atom"
        totals: list[torch.Tensor] = []
        spreads: list[torch.Tensor] = []
        atom_values: list[torch.Tensor] = []
        atom_samples: list[torch.Tensor] = []
        for s, system in enumerate(systems):
            neighbours = system.get_neighbor_list(self.options)
            pairs = neighbours.samples.values
            edge_index = pairs[:, :2].T.to(torch.long)
            shifts = pairs[:, 2:5].to(torch.long)
            if self.self_interaction:
                own = torch.arange(len(system), device=edge_index.device)
                edge_index = torch.cat([edge_index, torch.stack([own, own])], dim=1)
                shifts = torch.cat([shifts, torch.zeros((len(system), 3), dtype=torch.long, device=shifts.device)])
            species = self.potential.species(system.types.to(torch.long))
            members, atoms = self.potential.energies(system.positions, species, system.cell, edge_index, shifts)
            totals.append(members.mean().reshape(1))
            if self.ensemble:
                spreads.append(members.std().reshape(1))
            if per_atom:
                if atoms.shape[1] == 0:
                    raise ValueError("this model's network pools the energy itself: no per-atom energies")
                values = atoms.mean(dim=0)
                index = torch.arange(len(system), device=values.device)
                if selected_atoms is not None:
                    chosen = selected_atoms.values
                    index = chosen[chosen[:, 0] == s][:, 1].to(torch.long)
                    values = values[index]
                atom_values.append(values)
                atom_samples.append(torch.stack([torch.full_like(index, s), index], dim=1))
        dtype = systems[0].positions.dtype
        results: dict[str, TensorMap] = {}
        keys = Labels("_", torch.tensor([[0]], device=systems[0].positions.device))
        if "energy" in outputs:
            if per_atom:
                samples = Labels(["system", "atom"], torch.cat(atom_samples).to(torch.int32))
                values = torch.cat(atom_values).to(dtype).reshape(-1, 1)
            else:
                samples = Labels("system", torch.arange(len(systems), device=keys.values.device, dtype=torch.int32).reshape(-1, 1))
                values = torch.cat(totals).to(dtype).reshape(-1, 1)
            block = TensorBlock(values=values, samples=samples, components=[],
                                properties=Labels("energy", torch.tensor([[0]], device=keys.values.device)))
            results["energy"] = TensorMap(keys, [block])
        if "energy_uncertainty" in outputs and self.ensemble:
            samples = Labels("system", torch.arange(len(systems), device=keys.values.device, dtype=torch.int32).reshape(-1, 1))
            block = TensorBlock(values=torch.cat(spreads).to(dtype).reshape(-1, 1), samples=samples, components=[],
                                properties=Labels("energy", torch.tensor([[0]], device=keys.values.device)))
            results["energy_uncertainty"] = TensorMap(keys, [block])
        return results
