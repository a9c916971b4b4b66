"""The PDEs of fem-ms as UFL forms: diffusion, steady Richards (Haverkamp), heat.

All are ``−∇·(κ k(u) ∇u) = f`` on the unit square/cube with κ > 0 given on the fine mesh and
k(u) = 1 (diffusion, heat) or ``k(u) = 1/(1 + |u|)`` (Haverkamp), plus ``∂u/∂t`` for the heat
equation. Boundary conditions: ``u = 0`` on the whole boundary (:class:`DirichletBoundary`), or
``u = 0`` on y = 0 and a Robin condition on y = 1 with zero flux elsewhere
(:class:`RobinBoundary`).

A problem holds forms and boundary conditions only; :mod:`fem_ms.solvers` solves them and
:mod:`fem_ms.gmsfem` projects them onto multiscale spaces.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import ufl
from mpi4py import MPI

import firedrake as fd

from .checks import check_int, check_real
from .meshes import BOTTOM, TOP

__all__ = [
    "DirichletBoundary",
    "RobinBoundary",
    "Problem",
    "Diffusion",
    "Richards",
    "Heat",
    "make_problem",
    "dirichlet_conditions",
    "check_kappa",
    "PROBLEMS",
]


@dataclass(frozen=True)
class DirichletBoundary:
    """u = ``value`` on the whole boundary (a number, or a Function/UFL expression on the mesh)."""

    value: object = 0.0


@dataclass(frozen=True)
class RobinBoundary:
    """u = 0 on y = 0; ``−κ ∂u/∂n = α (u − u_const)`` on y = 1; zero flux on the other sides.

    The GMsFEM-NO paper writes ``κ ∂u/∂n = α(u − u_const)`` on y = 1. With n the outward normal
    that form is indefinite: for κ ≡ 1, α = 1 the function u = y lies in its kernel. We read n
    as the inward normal (outward flux proportional to u − u_const, the dissipative Robin
    condition), which is coercive for every α > 0. See docs/problems.md.
    """

    alpha: float = 1.0
    u_const: float = 1.0
    dirichlet_marker: int = BOTTOM
    robin_marker: int = TOP

    def __post_init__(self):
        object.__setattr__(self, "alpha", check_real("alpha (the Robin coefficient)", self.alpha, positive=True))
        object.__setattr__(self, "u_const", check_real("u_const", self.u_const))
        for name in ("dirichlet_marker", "robin_marker"):
            check_int(name, getattr(self, name))


def dirichlet_conditions(V, boundary) -> list[fd.DirichletBC]:
    """The Dirichlet conditions ``boundary`` (DirichletBoundary or RobinBoundary) puts on ``V``."""
    if isinstance(boundary, DirichletBoundary):
        return [fd.DirichletBC(V, boundary.value, "on_boundary")]
    if isinstance(boundary, RobinBoundary):
        return [fd.DirichletBC(V, 0.0, boundary.dirichlet_marker)]
    raise TypeError(f"boundary must be DirichletBoundary or RobinBoundary, got {boundary!r}")


def check_kappa(kappa, mesh) -> None:
    """Raise naming the problem unless ``kappa`` is a scalar Function on ``mesh``, finite and
    positive on every rank."""
    if not isinstance(kappa, fd.Function):
        raise TypeError(f"kappa must be a firedrake Function on the fine mesh, got {type(kappa).__name__}")
    if kappa.function_space().mesh() is not mesh:
        raise ValueError("kappa lives on a different mesh than the fine function space")
    if kappa.function_space().value_shape != ():
        raise ValueError(f"kappa must be scalar, got value shape {kappa.function_space().value_shape}")
    data = kappa.dat.data_ro
    comm = mesh.comm
    n_nan = comm.allreduce(int(np.count_nonzero(~np.isfinite(data))))
    if n_nan:
        raise ValueError(f"kappa has {n_nan} non-finite (NaN or inf) values")
    low = comm.allreduce(float(data.min(initial=np.inf)), op=MPI.MIN)
    if not low > 0:
        raise ValueError(f"kappa must be positive everywhere, but min kappa = {low:g}")


class Problem:
    """Base class: ``−∇·(κ k(u) ∇u) = f`` with boundary conditions, discretised on ``V``.

    Parameters
    ----------
    V : firedrake.FunctionSpace
        Scalar P1 (simplices) or Q1 (quadrilaterals/hexahedra) space on the fine mesh.
    kappa : firedrake.Function
        Permeability κ > 0, usually DG0 on the same mesh.
    forcing : firedrake.Function, UFL expression or float
        Right-hand side f.
    boundary : DirichletBoundary or RobinBoundary
    """

    name = "problem"
    linear = True

    def __init__(self, V, kappa, forcing=1.0, boundary=None):
        if not isinstance(V, fd.functionspaceimpl.WithGeometry):
            raise TypeError(f"V must be a firedrake FunctionSpace, got {type(V).__name__}")
        if V.value_shape != ():
            raise ValueError("V must be a scalar function space")
        if isinstance(forcing, numbers.Real):
            forcing = fd.Constant(check_real("forcing", forcing))
        elif not isinstance(forcing, ufl.core.expr.Expr):
            raise TypeError(f"forcing must be a number, a Function or a UFL expression, got {forcing!r}")
        boundary = DirichletBoundary() if boundary is None else boundary
        if not isinstance(boundary, (DirichletBoundary, RobinBoundary)):
            raise TypeError(f"boundary must be DirichletBoundary or RobinBoundary, got {boundary!r}")
        self.V = V
        self.mesh = V.mesh()
        self.kappa = kappa
        self.forcing = forcing
        self.boundary = boundary
        self.check_data()

    def check_data(self) -> None:
        """Check κ > 0 and finite, and a Function forcing finite, on every rank.

        Called when the problem is built and again by every solve: a κ changed in place
        afterwards (to 0 or NaN) is reported here, naming the field, and not as a PETSc error.
        """
        check_kappa(self.kappa, self.mesh)
        if isinstance(self.forcing, fd.Function):
            bad = self.mesh.comm.allreduce(int(np.count_nonzero(~np.isfinite(self.forcing.dat.data_ro))))
            if bad:
                raise ValueError(f"the forcing f has {bad} non-finite (NaN or inf) values")

    def relative_conductivity(self, u):
        """k(u) multiplying κ; 1 for linear problems."""
        return 1.0

    def conductivity(self, u):
        """The UFL expression κ k(u)."""
        return self.kappa * self.relative_conductivity(u)

    @property
    def bcs(self) -> list[fd.DirichletBC]:
        """Dirichlet conditions on ``V``."""
        return dirichlet_conditions(self.V, self.boundary)

    def stiffness(self, u, v, state=None):
        """Bilinear form ∫ κ k(state) ∇u·∇v (+ Robin term), with k frozen at ``state``."""
        k = 1.0 if state is None else self.relative_conductivity(state)
        a = self.kappa * k * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
        if isinstance(self.boundary, RobinBoundary):
            a += self.boundary.alpha * u * v * ufl.ds(self.boundary.robin_marker)
        return a

    def load(self, v):
        """Linear form ∫ f v (+ Robin term)."""
        L = self.forcing * v * ufl.dx
        if isinstance(self.boundary, RobinBoundary):
            b = self.boundary
            L += b.alpha * b.u_const * v * ufl.ds(b.robin_marker)
        return L

    def residual(self, u, v):
        """Nonlinear residual F(u; v) = a(u, v; k(u)) − L(v)."""
        return self.stiffness(u, v, state=u) - self.load(v)


class Diffusion(Problem):
    """Linear diffusion ``−∇·(κ∇u) = f``."""

    name = "diffusion"


class Richards(Problem):
    """Steady Richards' equation with Haverkamp conductivity ``κ(x)/(1 + |u|)``."""

    name = "richards"
    linear = False

    def relative_conductivity(self, u):
        return 1.0 / (1.0 + abs(u))


class Heat(Problem):
    """Heat equation ``u_t − ∇·(κ∇u) = f``, u(0) = ``initial``, backward Euler in time.

    Parameters
    ----------
    dt, t_end : float
        Time step and final time (the paper: 2.5e-6 and 5e-4, i.e. 200 steps).
    initial : float or firedrake.Function
    """

    name = "heat"

    def __init__(self, V, kappa, forcing=1.0, boundary=None, dt=2.5e-6, t_end=5e-4, initial=0.0):
        super().__init__(V, kappa, forcing, boundary)
        dt, t_end = check_real("dt", dt, positive=True), check_real("t_end", t_end, positive=True)
        steps = t_end / dt
        if abs(steps - round(steps)) > 1e-8 * steps:
            raise ValueError(f"t_end={t_end!r} is not a whole number of steps dt={dt!r}")
        self.dt = float(dt)
        self.t_end = float(t_end)
        self.n_steps = int(round(steps))
        if isinstance(initial, numbers.Real):
            initial = check_real("initial", initial)
        elif not isinstance(initial, ufl.core.expr.Expr):
            raise TypeError(f"initial must be a number, a Function or a UFL expression, got {initial!r}")
        self.initial = initial

    def mass(self, u, v):
        """∫ u v."""
        return u * v * ufl.dx


PROBLEMS = {cls.name: cls for cls in (Diffusion, Richards, Heat)}


def make_problem(name: str, V, kappa, forcing=1.0, boundary=None, **kwargs) -> Problem:
    """Build a problem by name: ``"diffusion"``, ``"richards"`` or ``"heat"``."""
    try:
        cls = PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; known problems: {sorted(PROBLEMS)}") from None
    return cls(V, kappa, forcing, boundary, **kwargs)
