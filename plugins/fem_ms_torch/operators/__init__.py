"""Neural operator layers and models (torch); the models are registered by name in
:mod:`fem_ms_torch.registry` ("ffno", "fno", "localno", "localffno"); :func:`space_time_fno` sizes
neuraloperator's FNO as Li et al.'s FNO-3d."""

from .differential import DifferentialConv
from .disco import DiscoConv, DiscoFilterBasis, SparseDiscoConv
from .ffno import FFNO, FactorizedSpectralConv
from .fno import FNO, SpectralConv
from .local_no import LocalFFNO, LocalNO
from .mesh_quadrature import lumped_vertex_weights, triangles_from_edges
from .space_time import space_time_fno

__all__ = ["DifferentialConv", "DiscoConv", "FFNO", "FNO", "FactorizedSpectralConv", "DiscoFilterBasis", "LocalFFNO",
           "LocalNO", "SparseDiscoConv", "SpectralConv", "lumped_vertex_weights", "space_time_fno",
           "triangles_from_edges"]
