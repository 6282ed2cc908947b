"""Shared layers: radial bases, cutoff envelopes, MLPs, scatter, and the network contract."""

from .graph import AtomicGraph, AtomisticNetwork, OutputSpec
from .mlp import MLP, activation
from .radial import BesselBasis, GaussianBasis, PolynomialCutoff, RadialEmbedding, XPLORCutoff
from .readout import dipole_moment, pool
from .scatter import scatter_mean, scatter_sum

__all__ = [
    "MLP",
    "AtomicGraph",
    "AtomisticNetwork",
    "BesselBasis",
    "GaussianBasis",
    "OutputSpec",
    "PolynomialCutoff",
    "RadialEmbedding",
    "XPLORCutoff",
    "activation",
    "dipole_moment",
    "pool",
    "scatter_mean",
    "scatter_sum",
]
