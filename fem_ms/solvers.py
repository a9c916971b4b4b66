"""Fine-scale solves of :mod:`fem_ms.problems` through Firedrake and PETSc.

Linear solvers are PETSc options: a preset name (``"mumps"``, ``"cholmod"``, ``"cg-gamg"``,
``"cg-hypre"``) or a dict of options that is passed through unchanged, so anything PETSc offers is
reachable. Nonlinear problems are solved by Newton (PETSc SNES) or Picard iterations; both stop
on the relative or absolute norm of the nonlinear residual and raise
:class:`ConvergenceError` with the iteration count and residual when they do not get there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

import firedrake as fd
from firedrake.petsc import PETSc

from .checks import check_int, check_real
from .petsc_options import check_used
from .problems import Heat, Problem

__all__ = [
    "SOLVER_PRESETS",
    "solver_parameters",
    "ConvergenceError",
    "SolveResult",
    "assemble_system",
    "linear_solver",
    "solve",
    "solve_linear",
    "solve_nonlinear",
    "solve_heat",
]

logger = logging.getLogger(__name__)

SOLVER_PRESETS: dict[str, dict] = {
    "mumps": {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"},
    "cholmod": {"ksp_type": "preonly", "pc_type": "cholesky", "pc_factor_mat_solver_type": "cholmod"},
    "cg-gamg": {"ksp_type": "cg", "pc_type": "gamg", "ksp_rtol": 1e-10, "ksp_atol": 0.0,
                "ksp_max_it": 2000, "mg_levels_pc_type": "sor"},
    "cg-hypre": {"ksp_type": "cg", "pc_type": "hypre", "pc_hypre_type": "boomeramg",
                 "ksp_rtol": 1e-10, "ksp_atol": 0.0, "ksp_max_it": 2000},
}


def solver_parameters(solver: str | dict = "mumps") -> dict:
    """PETSc options for a linear solver: a preset name or a dict of PETSc options.

    Raises
    ------
    ValueError
        For an unknown preset, or a preset whose PETSc package is not in this PETSc build.
    """
    if isinstance(solver, dict):
        return dict(solver)
    if not isinstance(solver, str) or solver not in SOLVER_PRESETS:
        raise ValueError(
            f"unknown solver {solver!r}; use one of {sorted(SOLVER_PRESETS)} or a dict of PETSc options"
        )
    params = dict(SOLVER_PRESETS[solver])
    package = params.get("pc_factor_mat_solver_type") or (
        "hypre" if params.get("pc_type") == "hypre" else None
    )
    if package and not PETSc.Sys.hasExternalPackage(package):
        raise ValueError(
            f"solver {solver!r} needs PETSc built with {package}, which this PETSc lacks "
            f"(see docs/install.md); try 'mumps' or 'cg-gamg'"
        )
    return params


class ConvergenceError(RuntimeError):
    """A solver did not converge; carries ``iterations`` and the last ``residual`` norm."""

    def __init__(self, message: str, iterations: int, residual: float):
        super().__init__(f"{message} (after {iterations} iterations, residual norm {residual:.3e})")
        self.iterations = iterations
        self.residual = residual


@dataclass
class SolveResult:
    """A fine solution and how it was obtained.

    Attributes
    ----------
    u : firedrake.Function
    iterations : int
        Nonlinear iterations (0 for linear problems), time steps for the heat equation.
    residuals : list of float
        Nonlinear residual norm after each iteration (starting with the initial guess).
    timings : dict
        Wall seconds by phase (``assembly``, ``solve``; ``online`` for multiscale solves).
    coarse : petsc4py.PETSc.Vec or None
        For a multiscale solve, the coarse coefficients u_0 (u = Rᵀ u_0).
    """

    u: fd.Function
    iterations: int = 0
    residuals: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    coarse: object = None


def _require_finite(u: fd.Function, what: str, iterations: int = 0) -> None:
    """Raise :class:`ConvergenceError` if ``u`` has a non-finite value on any rank."""
    with u.dat.vec_ro as vec:
        norm = vec.norm()
    if not np.isfinite(norm):
        raise ConvergenceError(f"{what}: the solution is not finite", iterations, float("nan"))


def assemble_system(problem: Problem, state=None):
    """Assemble the fine matrix (Dirichlet rows eliminated) and load vector of ``problem``.

    Returns
    -------
    A : firedrake.matrix.Matrix
    b : firedrake.Cofunction
    """
    u, v = fd.TrialFunction(problem.V), fd.TestFunction(problem.V)
    A = fd.assemble(problem.stiffness(u, v, state=state), bcs=problem.bcs, mat_type="aij")
    b = fd.assemble(problem.load(v))
    return A, b


def solve_linear(problem: Problem, solver: str | dict = "mumps", options_prefix: str | None = None) -> SolveResult:
    """Solve a linear problem (diffusion) on the fine mesh.

    ``options_prefix``: PETSc options under this prefix on the command line (``-{prefix}ksp_type``)
    override ``solver``'s; ``""`` makes plain ``-ksp_monitor`` apply (the ``fem-ms`` CLI does that).
    Default: a prefix of Firedrake's own, which no command-line option reaches.
    """
    if not problem.linear:
        raise ValueError(f"{problem.name} is nonlinear: use solve_nonlinear")
    params = solver_parameters(solver)
    problem.check_data()
    t0 = time.perf_counter()
    A, b = assemble_system(problem)
    t1 = time.perf_counter()
    u = fd.Function(problem.V, name="u")
    lin = linear_solver(A, params, options_prefix)
    _linear_solve(lin, u, b, f"the linear solve of {problem.name}")
    check_used(lin, params, "the linear solver")
    t2 = time.perf_counter()
    _require_finite(u, f"the linear solve of {problem.name}")
    return SolveResult(u, timings={"assembly": t1 - t0, "solve": t2 - t1})


def _linear_solve(solver, u, b, what: str, iterations: int = 0) -> None:
    """``solver.solve(u, b)`` (or ``solver.solve()`` when ``b`` is None), with PETSc's failure
    (a KSP that did not converge, a failed factorization) raised as :class:`ConvergenceError`."""
    try:
        solver.solve() if b is None else solver.solve(u, b)
    except (PETSc.Error, fd.ConvergenceError) as exc:
        from .petsc_options import petsc_error_summary

        ksp = solver.snes.ksp
        raise ConvergenceError(f"{what} failed: {petsc_error_summary(exc)}", iterations or ksp.getIterationNumber(),
                               ksp.getResidualNorm()) from exc


def linear_solver(A, params: dict, options_prefix: str | None = None) -> fd.LinearSolver:
    """A Firedrake LinearSolver for an assembled matrix that raises if the KSP does not converge."""
    params = dict(params)
    params.setdefault("ksp_error_if_not_converged", True)
    return fd.LinearSolver(A, solver_parameters=params, options_prefix=options_prefix)


def _residual_norm(problem: Problem, u: fd.Function) -> float:
    r = fd.assemble(problem.residual(u, fd.TestFunction(problem.V)))
    for bc in problem.bcs:
        bc.zero(r)
    with r.dat.vec_ro as vec:
        return vec.norm()


def solve_nonlinear(
    problem: Problem,
    method: str = "newton",
    solver: str | dict = "mumps",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    max_iterations: int | None = None,
    initial_guess: fd.Function | None = None,
    options_prefix: str | None = None,
) -> SolveResult:
    """Solve a nonlinear problem (Richards) by Newton or Picard iterations.

    Parameters
    ----------
    method : {"newton", "picard"}
        Newton: PETSc SNES (line search ``basic``) with the exact Jacobian of the UFL residual.
        Picard: freeze k(u) at the last iterate and solve the linear problem.
    rtol, atol : float
        Stop when ‖F(u_k)‖ ≤ max(atol, rtol ‖F(u_0)‖), F the residual with Dirichlet rows removed.
    max_iterations : int, optional
        Default 50 for Newton, 500 for Picard (which converges linearly).
    options_prefix : str, optional
        As for :func:`solve_linear` (the SNES, or Picard's linear solver, reads options under it).

    Raises
    ------
    ConvergenceError
        With the iteration count and the residual norm, if the tolerance is not met.
    """
    if method not in ("newton", "picard"):
        raise ValueError(f"unknown nonlinear method {method!r}; use 'newton' or 'picard'")
    max_iterations = check_int("max_iterations", 50 if method == "newton" else 500) if max_iterations is None \
        else check_int("max_iterations", max_iterations)
    rtol, atol = check_real("rtol", rtol, positive=True), check_real("atol", atol, low=0.0)
    params = solver_parameters(solver)
    problem.check_data()
    u = fd.Function(problem.V, name="u")
    if initial_guess is not None:
        u.assign(initial_guess)
    for bc in problem.bcs:
        bc.apply(u)
    t0 = time.perf_counter()
    residuals = [_residual_norm(problem, u)]
    if not np.isfinite(residuals[0]):
        raise ConvergenceError(f"the residual of {problem.name} at the initial guess is not finite (forcing or "
                               "initial guess too large for double precision?)", 0, residuals[0])
    target = max(atol, rtol * residuals[0])
    if method == "newton":
        v = fd.TestFunction(problem.V)
        snes_params = {"snes_type": "newtonls", "snes_linesearch_type": "basic",
                       "snes_rtol": 0.0, "snes_atol": target, "snes_stol": 0.0,
                       "snes_max_it": max_iterations, "snes_error_if_not_converged": False,
                       "snes_convergence_test": "default", **params}
        nlp = fd.NonlinearVariationalProblem(problem.residual(u, v), u, bcs=problem.bcs)
        nls = fd.NonlinearVariationalSolver(nlp, solver_parameters=snes_params, options_prefix=options_prefix)
        nls.snes.setMonitor(lambda snes, it, norm: residuals.append(norm) if it > 0 else None)
        try:
            nls.solve()
        except fd.ConvergenceError:
            pass  # reported below with our own message
        check_used(nls, params, "the Newton solver")
        iterations = nls.snes.getIterationNumber()
        final = _residual_norm(problem, u)
        if not final <= target or not np.isfinite(final):
            raise ConvergenceError(
                f"Newton did not converge for {problem.name} (target residual {target:.3e}, "
                f"reason {nls.snes.getConvergedReason()})", iterations, final)
    else:
        iterations = 0
        w, v = fd.TrialFunction(problem.V), fd.TestFunction(problem.V)
        state = u.copy(deepcopy=True)  # k(u) is frozen at this iterate
        lvp = fd.LinearVariationalProblem(problem.stiffness(w, v, state=state), problem.load(v), u,
                                          bcs=problem.bcs)
        picard = fd.LinearVariationalSolver(
            lvp, solver_parameters={"ksp_error_if_not_converged": True, **params}, options_prefix=options_prefix)
        while not residuals[-1] <= target:  # (a NaN residual is not below the target either)
            if not np.isfinite(residuals[-1]):
                raise ConvergenceError(f"Picard iterations for {problem.name} diverged: the residual is not "
                                       "finite", iterations, residuals[-1])
            if iterations == max_iterations:
                raise ConvergenceError(
                    f"Picard did not converge for {problem.name} (target residual {target:.3e})",
                    iterations, residuals[-1])
            state.assign(u)
            _linear_solve(picard, u, None, f"the linear solve of Picard iteration {iterations + 1} of {problem.name}",
                          iterations)
            if not iterations:
                check_used(picard, params, "the Picard iterations' linear solver")
            iterations += 1
            residuals.append(_residual_norm(problem, u))
    elapsed = time.perf_counter() - t0
    _require_finite(u, f"{method} iterations for {problem.name}", iterations)
    logger.info("%s %s: %d iterations, residual %.3e", problem.name, method, iterations, residuals[-1])
    return SolveResult(u, iterations=iterations, residuals=residuals, timings={"total": elapsed})


def solve_heat(
    problem: Heat, solver: str | dict = "mumps", callback=None, progress: bool = True,
    options_prefix: str | None = None,
) -> SolveResult:
    """Backward Euler for the heat equation; the matrix M + dt·A is factorised once.

    Parameters
    ----------
    callback : callable, optional
        Called as ``callback(step, t, u)`` with the initial state (step 0, t = 0) and after every
        step, e.g. to store snapshots (:class:`fem_ms.export.TimeSeriesWriter`).
    progress : bool
        Show a progress bar over the time steps (rank 0 only).
    options_prefix : str, optional
        As for :func:`solve_linear`.
    """
    if not isinstance(problem, Heat):
        raise TypeError(f"solve_heat needs a Heat problem, got {type(problem).__name__}")
    params = solver_parameters(solver)
    problem.check_data()
    V = problem.V
    w, v = fd.TrialFunction(V), fd.TestFunction(V)
    u_old = fd.Function(V, name="u")
    if isinstance(problem.initial, fd.Function):
        u_old.assign(problem.initial)
    else:
        u_old.interpolate(problem.initial)
    t0 = time.perf_counter()
    dt = fd.Constant(problem.dt)
    A = fd.assemble(problem.mass(w, v) + dt * problem.stiffness(w, v), bcs=problem.bcs, mat_type="aij")
    lin = linear_solver(A, params, options_prefix)
    rhs = problem.mass(u_old, v) + dt * problem.load(v)
    t_assembly = time.perf_counter() - t0
    if callback is not None:
        callback(0, 0.0, u_old)
    u = fd.Function(V, name="u")
    bar = tqdm(range(1, problem.n_steps + 1), desc="heat: backward Euler", unit="step",
               disable=not progress or V.mesh().comm.rank != 0, leave=False)
    for step in bar:
        _linear_solve(lin, u, fd.assemble(rhs), f"backward Euler step {step} of {problem.name}", step)
        if step == 1:
            check_used(lin, params, "the backward Euler solver")
        _require_finite(u, f"backward Euler step {step} of {problem.name}", step)
        u_old.assign(u)
        if callback is not None:
            callback(step, step * problem.dt, u)
    total = time.perf_counter() - t0
    return SolveResult(u, iterations=problem.n_steps,
                       timings={"assembly": t_assembly, "solve": total - t_assembly})


def solve(problem: Problem, solver: str | dict = "mumps", **kwargs) -> SolveResult:
    """Solve any :mod:`fem_ms.problems` problem on the fine mesh.

    Dispatches to :func:`solve_heat`, :func:`solve_nonlinear` or :func:`solve_linear`;
    ``kwargs`` go to the chosen function (e.g. ``method="picard"`` for Richards).
    """
    if isinstance(problem, Heat):
        return solve_heat(problem, solver, **kwargs)
    if not problem.linear:
        return solve_nonlinear(problem, solver=solver, **kwargs)
    unexpected = sorted(set(kwargs) - {"options_prefix"})
    if unexpected:
        raise TypeError(f"unexpected arguments for a linear solve: {unexpected}")
    return solve_linear(problem, solver, **kwargs)
