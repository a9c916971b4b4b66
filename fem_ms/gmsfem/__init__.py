"""Generalized Multiscale FEM: neighbourhoods, basis providers, the multiscale space, coarse models.

* :mod:`.neighbourhoods`, :mod:`.layout` — the coarse neighbourhoods ω_i and everything else
  that does not depend on κ, cached per mesh pair.
* :mod:`.patches`, :mod:`.providers` — what a basis provider is given and returns; the SLEPc
  provider (:mod:`.spectral`) and the entry-point registry.
* :mod:`.space` — :class:`MultiscaleSpace`: the offline stage for one κ (R, ``reconstruct``).
* :mod:`.coarse` — coarse models (linear, Picard, time stepping) on a space.
* :mod:`.method` — :class:`GMsFEM`, the one-line facade.
"""

from .coarse import (
                     CoarseModel,
                     CoarseSolveError,
                     LinearCoarseModel,
                     PicardCoarseModel,
                     TimeSteppingCoarseModel,
                     coarse_model,
)
from .layout import SpaceLayout, clear_layouts
from .method import GMsFEM
from .neighbourhoods import KINDS, FineGeometry, Neighbourhood, build_neighbourhoods
from .patches import PatchSet
from .providers import (
                     BasisProvider,
                     LocalBases,
                     ProviderOptions,
                     SpectralBasisProvider,
                     TruncatedBasisProvider,
                     available_providers,
                     get_provider,
)
from .space import DegenerateSpaceError, MultiscaleSpace, ReducedSpace
from .spectral import SpectralConvergenceError, SpectralSolveError, SpectralSolver

__all__ = ["KINDS", "BasisProvider", "CoarseModel", "CoarseSolveError", "DegenerateSpaceError", "FineGeometry",
           "GMsFEM", "LinearCoarseModel", "LocalBases", "MultiscaleSpace", "Neighbourhood", "PatchSet",
           "PicardCoarseModel", "ProviderOptions", "ReducedSpace", "SpaceLayout", "SpectralBasisProvider",
           "SpectralConvergenceError", "SpectralSolveError", "SpectralSolver", "TimeSteppingCoarseModel",
           "TruncatedBasisProvider", "available_providers", "build_neighbourhoods", "clear_layouts", "coarse_model",
           "get_provider"]
