"""fem-ms: multiscale finite elements (GMsFEM) on Firedrake/PETSc/SLEPc.

The classical core. It never imports torch; learned basis providers live in the separate
``fem_ms_torch`` package (``plugins/``) and are found through entry points.

Names are imported lazily (PEP 562): ``import fem_ms`` is instant, and Firedrake — which
initialises PETSc from ``sys.argv`` — loads on first use, after a script has parsed its own
command line.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "GaussianRandomForcing": "coefficients", "KLExpansion": "coefficients",
    "cell_field": "coefficients", "vertex_field": "coefficients",
    "NestedMeshes": "meshes", "gmsh_hierarchy": "meshes", "mesh_from_geo": "meshes",
    "nest": "meshes", "structured_hierarchy": "meshes",
    "relative_energy_error": "metrics", "relative_h1_error": "metrics", "relative_l2_error": "metrics",
    "Diffusion": "problems", "DirichletBoundary": "problems", "Heat": "problems",
    "Richards": "problems", "RobinBoundary": "problems", "make_problem": "problems",
    "ConvergenceError": "solvers", "SolveResult": "solvers", "solve": "solvers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fem_ms' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
