"""ANI's atomic environment vectors computed on the shared edge list.

Written here rather than taken from the ``torchani`` package on purpose: our edges already carry
each structure's cell shifts, so periodic, partially periodic and molecular structures, mixed
in one packed batch, need nothing more, and the strained edge vectors the training module
builds give forces and stress by autograd with no second neighbour search. The published ANI
terms (cosine cutoff, the 0.25 and 2 prefactors, the angle damped by 0.95) are kept so an
ANI-1x/2x AEV matches torchani's value for value (checked in the tests against reference
vectors computed with torchani 2.9.0).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...nn.capture import is_capturing
from ...nn.scatter import scatter_sum
from .config import AEVConfig

__all__ = ["AtomicEnvironmentVector", "cosine_cutoff", "edge_pairs"]

# ANI evaluates the angle as acos(0.95 cos(theta)): the derivative of acos is infinite at
# +-1 (collinear atoms), the damped argument keeps forces finite. We use the same angle.
_ANGLE_DAMPING = 0.95


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """ANI's cutoff ``0.5 cos(pi r / r_c) + 0.5`` for ``r < r_c``, else 0 (value and slope
    vanish at the cutoff, so energies and forces are continuous)."""
    inside = (r < cutoff).to(r.dtype)
    return (0.5 * torch.cos(r * (math.pi / cutoff)) + 0.5) * inside


def edge_pairs(centre: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every unordered pair of distinct edges that share their centre atom.

    Parameters
    ----------
    centre: ``[E]`` centre atom of each edge.
    num_nodes: number of atoms ``N``.

    Returns
    -------
    ``(first, second)``: ``[T]`` edge indices, ``T = sum_i n_i (n_i - 1) / 2`` for ``n_i`` edges
    at atom ``i``. Built with integer tensor operations only (no Python loop over atoms).

    Examples
    --------
    >>> first, second = edge_pairs(torch.tensor([0, 1, 0, 0]), 2)
    >>> sorted(zip(first.tolist(), second.tolist()))
    [(0, 2), (0, 3), (2, 3)]
    """
    order = torch.argsort(centre, stable=True)
    sorted_centre = centre[order]
    counts = torch.bincount(sorted_centre, minlength=num_nodes)
    group_start = torch.cumsum(counts, 0) - counts
    position = torch.arange(centre.shape[0], device=centre.device)  # shapes, not len(): traceable
    rank = position - group_start[sorted_centre]
    partners_after = counts[sorted_centre] - 1 - rank
    first = torch.repeat_interleave(position, partners_after)
    offset_of_first = torch.repeat_interleave(torch.cumsum(partners_after, 0) - partners_after, partners_after)
    second = first + 1 + (torch.arange(first.shape[0], device=centre.device) - offset_of_first)
    return order[first], order[second]


class AtomicEnvironmentVector(nn.Module):
    """Radial and angular AEV blocks of every atom, from edges ``i -> j``.

    The layout follows ANI: ``num_species`` radial blocks (one per neighbour element, in slot
    order) then one angular block per unordered pair of neighbour elements
    (``(0,0), (0,1), ..., (1,1), ...``); an angular block lists radial shifts outer, angle
    sections inner.

    Parameters
    ----------
    radial_cutoff: cutoff of the radial terms (Å).
    aev: angular cutoff and the shift, width and section grids.
    num_species: element slots of the AEV.
    """

    radial_shifts: torch.Tensor
    angular_shifts: torch.Tensor
    cos_sections: torch.Tensor
    sin_sections: torch.Tensor
    pair_slot: torch.Tensor

    def __init__(self, radial_cutoff: float, aev: AEVConfig, num_species: int) -> None:
        super().__init__()
        if aev.angular_cutoff > radial_cutoff:
            raise ValueError(f"angular cutoff {aev.angular_cutoff} exceeds the radial cutoff {radial_cutoff}")
        self.radial_cutoff = float(radial_cutoff)
        self.angular_cutoff = float(aev.angular_cutoff)
        self.num_species = int(num_species)
        self.num_pairs = num_species * (num_species + 1) // 2
        self.radial_eta = float(aev.radial_eta)
        self.angular_eta = float(aev.angular_eta)
        self.angular_zeta = float(aev.angular_zeta)
        dtype = torch.get_default_dtype()
        radial_step = (radial_cutoff - aev.radial_start) / aev.num_radial_shifts
        angular_step = (aev.angular_cutoff - aev.angular_start) / aev.num_angular_shifts
        sections = (torch.arange(aev.num_angle_sections, dtype=torch.float64) + 0.5) * math.pi / aev.num_angle_sections
        self.register_buffer("radial_shifts", (aev.radial_start + radial_step * torch.arange(aev.num_radial_shifts, dtype=torch.float64)).to(dtype))
        self.register_buffer("angular_shifts", (aev.angular_start + angular_step * torch.arange(aev.num_angular_shifts, dtype=torch.float64)).to(dtype))
        self.register_buffer("cos_sections", torch.cos(sections).to(dtype))
        self.register_buffer("sin_sections", torch.sin(sections).to(dtype))
        first, second = torch.triu_indices(num_species, num_species)
        pair_slot = torch.zeros(num_species, num_species, dtype=torch.long)
        pair_slot[first, second] = torch.arange(len(first))
        pair_slot[second, first] = torch.arange(len(first))
        self.register_buffer("pair_slot", pair_slot)
        self.radial_length = num_species * aev.radial_length()
        self.angular_length = self.num_pairs * aev.angular_length()

    @property
    def length(self) -> int:
        """Length of the AEV."""
        return self.radial_length + self.angular_length

    def forward(
        self, species: torch.Tensor, edge_index: torch.Tensor, edge_vectors: torch.Tensor, edge_lengths: torch.Tensor
    ) -> torch.Tensor:
        """AEVs of every atom.

        Parameters
        ----------
        species: ``[N]`` element slot of each atom.
        edge_index: ``[2, E]`` centre ``i`` and neighbour ``j`` of each edge.
        edge_vectors: ``[E, 3]`` from ``i`` to ``j`` (cell shifts included).
        edge_lengths: ``[E]``.

        Returns
        -------
        ``[N, length]`` radial blocks then angular blocks.
        """
        num_nodes = species.shape[0]
        # zero-length (self-interaction) edges have no direction and are no neighbours in ANI
        keep = (edge_lengths > 0) & (edge_lengths < self.radial_cutoff)
        # a recorded graph always filters: it cannot branch on the values
        if is_capturing() or not bool(keep.all()):
            edge_index, edge_vectors, edge_lengths = edge_index[:, keep], edge_vectors[keep], edge_lengths[keep]
        centre, neighbour = edge_index
        radial_terms = 0.25 * torch.exp(-self.radial_eta * (edge_lengths.unsqueeze(-1) - self.radial_shifts) ** 2)
        radial_terms = radial_terms * cosine_cutoff(edge_lengths, self.radial_cutoff).unsqueeze(-1)
        radial = scatter_sum(radial_terms, centre * self.num_species + species[neighbour], num_nodes * self.num_species)

        close = edge_lengths < self.angular_cutoff
        close_index = torch.nonzero(close).squeeze(1)
        first, second = edge_pairs(centre[close_index], num_nodes)
        first, second = close_index[first], close_index[second]
        r1, r2 = edge_lengths[first], edge_lengths[second]
        cos_angle = (edge_vectors[first] * edge_vectors[second]).sum(-1) / (r1 * r2)
        # cos(theta' - theta_s) with theta' = acos(0.95 cos theta), written without acos
        damped_cos = _ANGLE_DAMPING * cos_angle
        damped_sin = torch.sqrt(1.0 - damped_cos**2)
        cos_deviation = damped_cos.unsqueeze(-1) * self.cos_sections + damped_sin.unsqueeze(-1) * self.sin_sections
        angle_part = 2.0 * ((1.0 + cos_deviation) / 2.0) ** self.angular_zeta
        mean_distance = 0.5 * (r1 + r2)
        distance_part = torch.exp(-self.angular_eta * (mean_distance.unsqueeze(-1) - self.angular_shifts) ** 2)
        envelope = cosine_cutoff(r1, self.angular_cutoff) * cosine_cutoff(r2, self.angular_cutoff)
        angular_terms = (distance_part.unsqueeze(-1) * angle_part.unsqueeze(-2)).flatten(1) * envelope.unsqueeze(-1)
        slot = self.pair_slot[species[neighbour[first]], species[neighbour[second]]]
        angular = scatter_sum(angular_terms, centre[first] * self.num_pairs + slot, num_nodes * self.num_pairs)
        return torch.cat([radial.view(num_nodes, -1), angular.view(num_nodes, -1)], dim=-1)

    def extra_repr(self) -> str:
        return (
            f"species={self.num_species}, radial_cutoff={self.radial_cutoff}, angular_cutoff={self.angular_cutoff}, "
            f"radial={self.num_species}x{len(self.radial_shifts)}, "
            f"angular={self.num_pairs}x{len(self.angular_shifts)}x{len(self.cos_sections)} -> length {self.length}"
        )
