"""Neural operator layers and models (torch); the models are registered by name in
:mod:`fem_ms_torch.registry` ("ffno", "fno", "localno", "localffno", "localsfno")."""

from .differential import DifferentialConv
from .disco import DiscoConv, DiscoFilterBasis, SparseDiscoConv
from .ffno import FFNO, FactorizedSpectralConv
from .fno import FNO, SpectralConv
from .local_no import LocalFFNO, LocalNO
from .mesh_quadrature import lumped_vertex_weights, triangles_from_edges
from .spherical import LocalSFNO, SphericalDiscoConv

__all__ = ["DifferentialConv", "DiscoConv", "FFNO", "FNO", "FactorizedSpectralConv", "DiscoFilterBasis", "LocalFFNO",
           "LocalNO", "LocalSFNO", "SparseDiscoConv", "SpectralConv", "SphericalDiscoConv", "lumped_vertex_weights",
           "triangles_from_edges"]
