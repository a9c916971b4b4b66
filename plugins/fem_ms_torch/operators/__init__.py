"""Neural operator layers and models (torch), chosen by name for checkpoints."""

from .differential import DifferentialConv
from .disco import DiscoConv, LocalBasis, SparseDiscoConv
from .ffno import FFNO, FactorizedSpectralConv
from .fno import FNO, SpectralConv
from .local_no import LocalFFNO, LocalNO
from .mesh_quadrature import lumped_vertex_weights, triangles_from_edges

ARCHITECTURES = {"ffno": FFNO, "fno": FNO, "localno": LocalNO, "localffno": LocalFFNO}

__all__ = ["ARCHITECTURES", "DifferentialConv", "DiscoConv", "FFNO", "FNO", "FactorizedSpectralConv",
           "LocalBasis", "LocalFFNO", "LocalNO", "SparseDiscoConv", "SpectralConv",
           "lumped_vertex_weights", "triangles_from_edges"]
