"""Neural operator layers and models (torch); the models are registered by name in
:mod:`fem_ms_torch.registry` ("ffno", "fno", "localno", "localffno", "localsfno", and the
operator-learning baselines "gnot", "transolver++", "deeponet"); :func:`space_time_fno` sizes
neuraloperator's FNO as Li et al.'s FNO-3d."""

from .deeponet import DeepONet
from .differential import DifferentialConv
from .disco import DiscoConv, DiscoFilterBasis, SparseDiscoConv
from .ffno import FFNO, FactorizedSpectralConv
from .fno import FNO, SpectralConv
from .gnot import GNOT
from .local_no import LocalFFNO, LocalNO
from .mesh_quadrature import lumped_vertex_weights, triangles_from_edges
from .point_cloud import PointCloudOperator
from .space_time import space_time_fno
from .spherical import LocalSFNO, SphericalDiscoConv
from .transolver import TransolverPlusPlus

__all__ = ["DeepONet", "DifferentialConv", "DiscoConv", "FFNO", "FNO", "FactorizedSpectralConv", "DiscoFilterBasis",
           "GNOT", "LocalFFNO", "LocalNO", "LocalSFNO", "PointCloudOperator", "SparseDiscoConv", "SpectralConv",
           "SphericalDiscoConv", "TransolverPlusPlus", "lumped_vertex_weights", "space_time_fno",
           "triangles_from_edges"]
