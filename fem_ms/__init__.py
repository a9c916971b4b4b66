"""fem-ms: multiscale finite elements (GMsFEM) on Firedrake/PETSc/SLEPc.

The classical core. It never imports torch; learned basis providers live in the separate
``fem_ms_torch`` package (``plugins/``) and are found through entry points.
"""

from .coefficients import GaussianRandomForcing, KLExpansion, cell_field, vertex_field
from .meshes import NestedMeshes, gmsh_hierarchy, mesh_from_geo, nest, structured_hierarchy
from .metrics import relative_energy_error, relative_h1_error, relative_l2_error
from .problems import Diffusion, DirichletBoundary, Heat, Richards, RobinBoundary, make_problem
from .solvers import ConvergenceError, SolveResult, solve

__version__ = "0.1.0"

__all__ = [
    "ConvergenceError",
    "Diffusion",
    "DirichletBoundary",
    "GaussianRandomForcing",
    "Heat",
    "KLExpansion",
    "NestedMeshes",
    "Richards",
    "RobinBoundary",
    "SolveResult",
    "cell_field",
    "gmsh_hierarchy",
    "make_problem",
    "mesh_from_geo",
    "nest",
    "relative_energy_error",
    "relative_h1_error",
    "relative_l2_error",
    "solve",
    "structured_hierarchy",
    "vertex_field",
]
