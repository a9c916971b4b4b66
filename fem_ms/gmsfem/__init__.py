"""Generalized Multiscale FEM: neighbourhoods, local spectral bases, multiscale space, online solves."""

from .neighbourhoods import FineGeometry, Neighbourhood, build_neighbourhoods
from .online import GMsFEM
from .providers import (BasisProvider, LocalBases, PatchSet, SpectralBasisProvider, available_providers,
                        get_provider)
from .spectral import SpectralConvergenceError, SpectralSolver

__all__ = ["BasisProvider", "FineGeometry", "GMsFEM", "LocalBases", "Neighbourhood", "PatchSet",
           "SpectralBasisProvider", "SpectralConvergenceError", "SpectralSolver", "available_providers",
           "build_neighbourhoods", "get_provider"]
