"""Radial bases and smooth cutoff envelopes shared by every family."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BesselBasis", "GaussianBasis", "PolynomialCutoff", "RadialEmbedding", "XPLORCutoff"]


class PolynomialCutoff(nn.Module):
    r"""Smooth envelope :math:`u(r)` that is 1 at 0 and vanishes with ``p`` continuous derivatives
    at the cutoff (Klicpera et al. 2020, DimeNet, eq. 8).

    .. math:: u(d) = 1 - \frac{(p+1)(p+2)}{2} d^p + p(p+2) d^{p+1} - \frac{p(p+1)}{2} d^{p+2},
              \quad d = r / r_c

    Multiplying every radial input by it makes energies continuous at the cutoff, so forces
    are defined and learnable.

    Examples
    --------
    >>> env = PolynomialCutoff(cutoff=5.0, p=6)
    >>> float(env(torch.tensor([0.0])))
    1.0
    >>> float(env(torch.tensor([5.0])))
    0.0
    """

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``[E]`` distances -> ``[E]`` envelope values."""
        p = self.p
        d = r / self.cutoff
        out = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * d.pow(p)
            + p * (p + 2) * d.pow(p + 1)
            - 0.5 * p * (p + 1) * d.pow(p + 2)
        )
        return out * (d < 1.0).to(out.dtype)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, p={self.p}"


class XPLORCutoff(nn.Module):
    r"""The XPLOR switching function (CHARMM/HOOMD): 1 below ``cutoff_on``, then a smooth
    step down to 0 at ``cutoff`` with continuous first derivative (SevenNet-0 uses it).

    .. math:: u(r) = \frac{(r_c^2 - r^2)^2 (r_c^2 + 2 r^2 - 3 r_{on}^2)}{(r_c^2 - r_{on}^2)^3},
              \quad r_{on} \le r < r_c

    Examples
    --------
    >>> env = XPLORCutoff(cutoff=5.0, cutoff_on=4.5)
    >>> [round(float(v), 6) for v in env(torch.tensor([1.0, 4.5, 5.0]))]
    [1.0, 1.0, 0.0]
    """

    def __init__(self, cutoff: float, cutoff_on: float) -> None:
        super().__init__()
        if not 0.0 <= cutoff_on < cutoff:
            raise ValueError(f"the XPLOR envelope needs 0 <= cutoff_on < cutoff, got cutoff_on={cutoff_on}, cutoff={cutoff}")
        self.cutoff = float(cutoff)
        self.cutoff_on = float(cutoff_on)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``[E]`` distances -> ``[E]`` envelope values."""
        r_sq = r * r
        on_sq, cut_sq = self.cutoff_on**2, self.cutoff**2
        switched = (cut_sq - r_sq) ** 2 * (cut_sq + 2 * r_sq - 3 * on_sq) / (cut_sq - on_sq) ** 3
        out = torch.where(r < self.cutoff_on, torch.ones_like(r), switched)
        return out * (r < self.cutoff).to(out.dtype)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, cutoff_on={self.cutoff_on}"


class BesselBasis(nn.Module):
    r"""Radial Bessel functions :math:`\sqrt{2/r_c}\,\sin(n\pi r/r_c)/r`, ``n = 1..num_basis``
    (DimeNet; NequIP and MACE use the same), with optionally trainable frequencies.

    ``prefactor`` replaces :math:`\sqrt{2/r_c}` (SevenNet uses :math:`2/r_c`), so that a network
    trained with another constant in front computes the same basis.
    """

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = False, prefactor: float | None = None) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.num_basis = int(num_basis)
        frequencies = self._initial_frequencies(torch.get_default_dtype())
        if trainable:
            self.frequencies = nn.Parameter(frequencies)
        else:
            self.register_buffer("frequencies", frequencies)
        self.prefactor = math.sqrt(2.0 / self.cutoff) if prefactor is None else float(prefactor)

    def _initial_frequencies(self, dtype: torch.dtype) -> torch.Tensor:
        return math.pi / self.cutoff * torch.arange(1, self.num_basis + 1, dtype=dtype)

    def reset_parameters(self) -> None:
        """Trainable frequencies back to ``n pi / r_c``."""
        with torch.no_grad():
            self.frequencies.copy_(self._initial_frequencies(self.frequencies.dtype))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``[E]`` -> ``[E, num_basis]``."""
        r = r.unsqueeze(-1)
        # sin(w r) / r is finite at r -> 0 (limit w); guard the division for self-interaction edges
        safe = torch.where(r > 1e-9, r, torch.ones_like(r))
        values = torch.sin(self.frequencies * r) / safe
        values = torch.where(r > 1e-9, values, self.frequencies.expand_as(values))
        return self.prefactor * values

    def extra_repr(self) -> str:
        trainable = isinstance(self.frequencies, nn.Parameter)
        return f"cutoff={self.cutoff}, num_basis={self.num_basis}, trainable={trainable}, prefactor={self.prefactor:.4g}"


class GaussianBasis(nn.Module):
    """Gaussians on an even grid from 0 to the cutoff (SchNet's radial basis)."""

    centres: torch.Tensor

    def __init__(self, cutoff: float, num_basis: int = 16) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.num_basis = int(num_basis)
        centres = torch.linspace(0.0, cutoff, num_basis, dtype=torch.get_default_dtype())
        self.register_buffer("centres", centres)
        self.gamma = 0.5 / float(centres[1] - centres[0]) ** 2 if num_basis > 1 else 1.0

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``[E]`` -> ``[E, num_basis]``."""
        return torch.exp(-self.gamma * (r.unsqueeze(-1) - self.centres) ** 2)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, num_basis={self.num_basis}"


class RadialEmbedding(nn.Module):
    """A radial basis times the smooth envelope: ``[E] -> [E, num_basis]``, zero at the cutoff.

    ``envelope="polynomial"`` (default, exponent ``envelope_p``) or ``"xplor"`` (switching from
    ``envelope_on``); ``bessel_prefactor`` is :class:`BesselBasis`'s ``prefactor``.
    """

    def __init__(self, cutoff: float, num_basis: int = 8, envelope_p: int = 6, trainable: bool = False, kind: str = "bessel",
                 *, envelope: str = "polynomial", envelope_on: float | None = None, bessel_prefactor: float | None = None) -> None:
        super().__init__()
        if kind == "bessel":
            self.basis: nn.Module = BesselBasis(cutoff, num_basis, trainable, prefactor=bessel_prefactor)
        elif kind == "gaussian":
            self.basis = GaussianBasis(cutoff, num_basis)
        else:
            raise ValueError(f"unknown radial basis {kind!r} (bessel, gaussian)")
        if envelope == "polynomial":
            self.envelope: nn.Module = PolynomialCutoff(cutoff, envelope_p)
        elif envelope == "xplor":
            if envelope_on is None:
                raise ValueError("the xplor envelope needs envelope_on (where the switching starts)")
            self.envelope = XPLORCutoff(cutoff, envelope_on)
        else:
            raise ValueError(f"unknown envelope {envelope!r} (polynomial, xplor)")
        self.num_basis = int(num_basis)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``[E]`` -> ``[E, num_basis]``."""
        return self.basis(r) * self.envelope(r).unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"num_basis={self.num_basis}"
