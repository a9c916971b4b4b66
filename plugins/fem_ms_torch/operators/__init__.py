"""Neural operator layers and models (torch); the models are registered by name in
:mod:`fem_ms_torch.registry` ("ffno", "fno", "localno", "localffno", and the operator-learning
baselines "gnot", "transolver++", "deeponet")."""

from .deeponet import DeepONet
from .differential import DifferentialConv
from .disco import DiscoConv, DiscoFilterBasis, SparseDiscoConv
from .ffno import FFNO, FactorizedSpectralConv
from .fno import FNO, SpectralConv
from .gnot import GNOT
from .local_no import LocalFFNO, LocalNO
from .mesh_quadrature import lumped_vertex_weights, triangles_from_edges
from .point_cloud import PointCloudOperator
from .transolver import TransolverPlusPlus

__all__ = ["DeepONet", "DifferentialConv", "DiscoConv", "FFNO", "FNO", "FactorizedSpectralConv", "DiscoFilterBasis",
           "GNOT", "LocalFFNO", "LocalNO", "PointCloudOperator", "SparseDiscoConv", "SpectralConv",
           "TransolverPlusPlus", "lumped_vertex_weights", "triangles_from_edges"]
