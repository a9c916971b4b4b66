"""Coarse models: a problem projected on a reduced space and solved there.

The space is a :class:`~.space.ReducedSpace`: GMsFEM's :class:`~.space.MultiscaleSpace`, or a
global POD space (:class:`fem_ms.pod.PODSpace`, intrusive POD). Below, R is the space's
restriction (Rᵀ spans it).

One small class per kind of online solve, all over the same space:

* :class:`LinearCoarseModel` — A_0 u_0 = f_0 with A_0 = R A Rᵀ, f_0 = R b; factorised once and
  reused for any number of right-hand sides.
* :class:`PicardCoarseModel` — Richards' equation by Picard iterations in the coarse space, the
  conductivity κ k(u) re-assembled on the fine mesh at each iterate.
* :class:`TimeSteppingCoarseModel` — the heat equation by backward Euler in the coarse space.

:func:`coarse_model` picks the one for a problem. Every coarse solve checks its result: a
factorization PETSc reports as failed, a non-finite solution or a solution that does not solve
its system raise :class:`CoarseSolveError`; a non-finite Picard residual raises
:class:`~fem_ms.solvers.ConvergenceError`.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

import firedrake as fd
from firedrake.petsc import PETSc

from ..checks import check_int, check_real
from ..problems import Heat, Problem
from ..solvers import ConvergenceError, SolveResult
from .layout import _dirichlet_key
from .space import ReducedSpace

__all__ = ["CoarseModel", "LinearCoarseModel", "PicardCoarseModel", "TimeSteppingCoarseModel", "coarse_model",
           "CoarseSolveError"]

# backward error ‖A x − b‖ / (‖A‖ ‖x‖ + ‖b‖) above which a direct solve is reported as failed
_BACKWARD_ERROR_LIMIT = 1e-8


class CoarseSolveError(RuntimeError):
    """A coarse system could not be solved (singular, not finite, or the solve failed)."""


def coarse_model(space: ReducedSpace, problem: Problem) -> CoarseModel:
    """The coarse model of ``problem`` on ``space``: time stepping for the heat equation, Picard
    iterations for nonlinear problems, one linear solve otherwise."""
    if isinstance(problem, Heat):
        return TimeSteppingCoarseModel(space, problem)
    if not problem.linear:
        return PicardCoarseModel(space, problem)
    return LinearCoarseModel(space, problem)


class CoarseModel:
    """``problem`` on the reduced space ``space`` (a multiscale space is shared by every model on
    the same κ, a POD space by every model on its fine space).

    Raises
    ------
    ValueError
        If the problem is not on the space's fine space, has another κ than the one the space
        was built for (or κ changed since), or other Dirichlet boundaries.
    """

    def __init__(self, space: ReducedSpace, problem: Problem):
        if not isinstance(space, ReducedSpace):
            raise TypeError(f"space must be a ReducedSpace (a MultiscaleSpace or a PODSpace), got "
                            f"{type(space).__name__}")
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a fem_ms.problems.Problem, got {type(problem).__name__}")
        if problem.V.mesh() is not space.V.mesh() or problem.V.ufl_element() != space.V.ufl_element():
            raise ValueError("the problem's function space is not the multiscale space's fine space")
        if not space.matches_kappa(problem.kappa):
            raise ValueError("the problem's kappa is not the kappa the multiscale space was built for (or it "
                             "changed since): build a MultiscaleSpace for this kappa")
        if _dirichlet_key(problem.bcs) != _dirichlet_key(space.dirichlet_conditions):
            raise ValueError(f"the problem has Dirichlet conditions on {_dirichlet_key(problem.bcs)}, the multiscale "
                             f"space was built for {_dirichlet_key(space.dirichlet_conditions)}")
        value = getattr(problem.boundary, "value", 0.0)
        if not (isinstance(value, (int, float)) and value == 0):
            raise ValueError("GMsFEM supports homogeneous Dirichlet conditions (value 0)")
        self.space, self.problem = space, problem

    def operator(self, state=None) -> PETSc.Mat:
        """A_0 = R A Rᵀ, with the fine stiffness A assembled at ``state`` (the frozen k(u))."""
        V = self.problem.V
        w, v = fd.TrialFunction(V), fd.TestFunction(V)
        return self.space.project(_assemble(self.problem.stiffness(w, v, state=state)))

    def load(self, form=None) -> PETSc.Vec:
        """f_0 = R b for the problem's load, or for ``form``: a linear form or an assembled cofunction."""
        if form is None:
            form = self.problem.load(fd.TestFunction(self.problem.V))
        cofunction = form if isinstance(form, fd.Cofunction) else fd.assemble(form)
        return self.space.restrict(cofunction)

    def _result(self, u0: PETSc.Vec, start: float, **kwargs) -> SolveResult:
        result = SolveResult(self.space.reconstruct(u0), coarse=u0, **kwargs)
        result.timings["online"] = time.perf_counter() - start
        return result

    def solve(self, **kwargs) -> SolveResult:  # pragma: no cover - every model overrides it
        """Solve on the multiscale space; the result's ``u`` is the fine-space reconstruction Rᵀu₀."""
        raise NotImplementedError


class LinearCoarseModel(CoarseModel):
    """A linear problem on the multiscale space; A_0 is assembled and factorised on the first
    solve and reused by later ones."""

    def __init__(self, space: ReducedSpace, problem: Problem):
        super().__init__(space, problem)
        if not problem.linear or isinstance(problem, Heat):
            raise ValueError(f"{problem.name} is not a steady linear problem")
        self._solver = None

    def solve(self, load=None) -> SolveResult:
        """u = Rᵀ A_0⁻¹ f_0.

        Parameters
        ----------
        load : UFL linear form or firedrake.Cofunction, optional
            Another right-hand side b (default: the problem's ``load``); A_0 is not rebuilt.
        """
        t0 = time.perf_counter()
        if self._solver is None:
            self._solver = _CoarseSolver(self.operator(), self.space.comm, "the coarse system")
        u0 = self._solver.solve(self.load(load))
        return self._result(u0, t0)


class PicardCoarseModel(CoarseModel):
    """A nonlinear problem (Richards) by Picard iterations on the multiscale space.

    Iterate u_{k+1} = Rᵀ A_0(u_k)⁻¹ f_0 with A_0(u) = R A(u) Rᵀ, A(u) the fine stiffness with the
    conductivity frozen at u, until ‖A_0(u_k) u_0,k − f_0‖ ≤ rtol ‖f_0‖.
    """

    def solve(self, rtol: float = 1e-8, max_iterations: int = 200) -> SolveResult:
        """The Picard fixed point; ``residuals`` holds ‖A_0(u_k) u_0,k − f_0‖ per iterate.

        Raises
        ------
        ConvergenceError
            If the residual is not finite, or above the tolerance after ``max_iterations``.
        """
        rtol, max_iterations = check_real("rtol", rtol, positive=True), check_int("max_iterations", max_iterations)
        t0 = time.perf_counter()
        u = fd.Function(self.problem.V, name="u_ms")
        f0 = self.load()
        scale = f0.norm()
        residuals: list[float] = []
        u0 = None
        for iteration in range(max_iterations + 1):
            A0 = self.operator(state=u)
            if u0 is not None:
                r0 = f0.duplicate()
                A0.mult(u0, r0)
                r0.axpy(-1.0, f0)
                residuals.append(r0.norm())
                if not np.isfinite(residuals[-1]):
                    raise ConvergenceError(f"GMsFEM Picard iterations for {self.problem.name} diverged: the coarse "
                                           "residual is not finite", iteration, residuals[-1])
                if residuals[-1] <= rtol * scale:
                    return self._result(u0, t0, iterations=iteration, residuals=residuals)
            if iteration == max_iterations:
                break
            u0 = _CoarseSolver(A0, self.space.comm, f"the coarse system of Picard iteration {iteration + 1}").solve(f0)
            u.assign(self.space.reconstruct(u0))
        raise ConvergenceError(f"GMsFEM Picard iterations did not converge for {self.problem.name}",
                               max_iterations, residuals[-1])


class TimeSteppingCoarseModel(CoarseModel):
    """The heat equation by backward Euler on the multiscale space: (M_0 + Δt K_0) u_0^{n+1} =
    M_0 u_0^n + Δt f_0, from the L2 projection of the initial state; the left-hand side is
    factorised once."""

    def __init__(self, space: ReducedSpace, problem: Problem):
        super().__init__(space, problem)
        if not isinstance(problem, Heat):
            raise ValueError(f"time stepping needs a Heat problem, got {problem.name}")

    def solve(self, progress: bool = True) -> SolveResult:
        """u at the final time; ``iterations`` is the number of steps.

        Raises
        ------
        CoarseSolveError
            If a step's solution is not finite (naming the step).
        """
        t0 = time.perf_counter()
        problem, space = self.problem, self.space
        V = problem.V
        w, v = fd.TrialFunction(V), fd.TestFunction(V)
        M0 = space.project(_assemble(problem.mass(w, v)))
        K0 = self.operator()
        f0 = self.load()
        u_init = fd.Function(V)
        if isinstance(problem.initial, fd.Function):
            u_init.assign(problem.initial)
        else:
            u_init.interpolate(problem.initial)
        u0 = _CoarseSolver(M0, space.comm, "the L2 projection of the initial state").solve(
            self.load(problem.mass(u_init, v)))
        lhs = M0.copy()
        lhs.axpy(problem.dt, K0)
        step_solver = _CoarseSolver(lhs, space.comm, "the backward Euler system")
        rhs = u0.duplicate()
        for step in tqdm(range(1, problem.n_steps + 1), desc="GMsFEM heat: backward Euler", unit="step",
                         disable=not progress or space.comm.rank != 0, leave=False):
            M0.mult(u0, rhs)
            rhs.axpy(problem.dt, f0)
            u0 = step_solver.solve(rhs, what=f"the backward Euler system of step {step}")
        return self._result(u0, t0, iterations=problem.n_steps)


def _assemble(form) -> PETSc.Mat:
    return fd.assemble(form, mat_type="aij").petscmat


class _CoarseSolver:
    """A direct solver for one coarse matrix (LU; MUMPS where PETSc has it; options under
    ``-gmsfem_coarse_``) that checks every solution it returns."""

    def __init__(self, A: PETSc.Mat, comm, what: str):
        self.A, self.what = A, what
        self.norm_A = A.norm(PETSc.NormType.INFINITY)
        if not np.isfinite(self.norm_A):
            raise CoarseSolveError(f"{what} has non-finite entries (is kappa or the problem data finite?)")
        ksp = PETSc.KSP().create(comm=comm)
        ksp.setOperators(A)
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("lu")
        if PETSc.Sys.hasExternalPackage("mumps"):
            pc.setFactorSolverType("mumps")
        ksp.setOptionsPrefix("gmsfem_coarse_")
        ksp.setErrorIfNotConverged(True)
        ksp.setFromOptions()
        self.ksp = ksp

    def solve(self, b: PETSc.Vec, what: str | None = None) -> PETSc.Vec:
        what = what or self.what
        norm_b = b.norm(PETSc.NormType.INFINITY)
        if not np.isfinite(norm_b):
            raise CoarseSolveError(f"the right-hand side of {what} is not finite")
        x = self.A.createVecRight()
        try:
            self.ksp.solve(b, x)
        except PETSc.Error as exc:
            reason = self.ksp.getPC().getFailedReason() if hasattr(self.ksp.getPC(), "getFailedReason") else None
            raise CoarseSolveError(f"the direct solve of {what} ({self.A.getSize()[0]} coarse DOFs) failed "
                                   f"(PETSc error {exc.ierr}, factorization reason {reason}): the coarse matrix is "
                                   "singular or not finite") from exc
        norm_x = x.norm(PETSc.NormType.INFINITY)
        r = b.duplicate()
        self.A.mult(x, r)
        r.axpy(-1.0, b)
        backward = r.norm(PETSc.NormType.INFINITY) / max(self.norm_A * norm_x + norm_b, np.finfo(float).tiny)
        if not np.isfinite(norm_x) or not backward <= _BACKWARD_ERROR_LIMIT:
            state = "not finite" if not np.isfinite(norm_x) else f"inaccurate (backward error {backward:.1e})"
            raise CoarseSolveError(f"the solution of {what} ({self.A.getSize()[0]} coarse DOFs) is {state}: the "
                                   "coarse matrix is singular or too ill-conditioned for the direct solver")
        return x
