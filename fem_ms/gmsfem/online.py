"""GMsFEM: offline stage (neighbourhoods → provider → R) and online coarse solves.

``GMsFEM(problem, pair, n_basis=8, basis="slepc").solve()`` returns the multiscale solution
u = Rᵀ u_0 as a fine-mesh Function, with A_0 = R A Rᵀ, f_0 = R b; Richards by Picard iterations
in the coarse space (the conductivity re-assembled on the fine mesh each iteration); the heat
equation by backward Euler in the coarse space.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm.auto import tqdm

import firedrake as fd
from firedrake.petsc import PETSc

from ..meshes import NestedMeshes
from ..problems import DirichletBoundary, Heat, Problem
from ..solvers import ConvergenceError, SolveResult
from .neighbourhoods import FineGeometry, build_neighbourhoods
from .providers import PatchSet, get_provider
from .space import check_bases, restriction_matrix

__all__ = ["GMsFEM"]

logger = logging.getLogger(__name__)


class GMsFEM:
    """The Generalized Multiscale FEM for a fine-scale problem on a nested mesh pair.

    Parameters
    ----------
    problem : fem_ms.problems.Problem
        Diffusion, Richards or Heat on ``pair.fine`` (homogeneous Dirichlet or Robin boundary).
    pair : NestedMeshes
        The coarse/fine meshes; ``problem.V`` must live on ``pair.fine``.
    n_basis : int
        Local basis functions per neighbourhood (N_bf).
    basis : str or BasisProvider
        Provider name from the ``fem_ms.basis_providers`` entry points (``"slepc"`` built in)
        or a provider object.
    provider_options : dict, optional
        Keyword arguments for the provider's constructor when ``basis`` is a name.

    Attributes
    ----------
    timings : dict
        Wall seconds of the offline phases (``geometry``, ``local_assembly``, ``factorization``,
        ``eigensolve``, ``provider``, ``restriction``) and of the last online solve.
        ``geometry`` (neighbourhoods and the gathered fine numbering) depends on the meshes and
        the space only: it is computed for the first problem on a pair and reused (then ~0 s).
    """

    def __init__(self, problem: Problem, pair: NestedMeshes, n_basis: int = 8, basis="slepc",
                 provider_options: dict | None = None):
        if not isinstance(pair, NestedMeshes):
            raise TypeError(f"pair must be NestedMeshes (see fem_ms.meshes), got {type(pair).__name__}")
        if problem.V.mesh() is not pair.fine:
            raise ValueError("the problem's function space is not on the fine mesh of this pair")
        if problem.V.ufl_element().degree() != 1:
            raise ValueError("GMsFEM is implemented for P1/Q1 fine spaces")
        value = getattr(problem.boundary, "value", 0.0)
        if isinstance(problem.boundary, DirichletBoundary) and not (isinstance(value, (int, float)) and value == 0):
            raise ValueError("GMsFEM supports homogeneous Dirichlet conditions (value 0)")
        if isinstance(n_basis, bool) or not isinstance(n_basis, (int, np.integer)) or n_basis < 1:
            raise ValueError(f"n_basis must be a positive integer, got {n_basis!r}")
        self.problem = problem
        self.pair = pair
        self.n_basis = int(n_basis)
        self.provider = get_provider(basis, **(provider_options or {}))
        self.comm = problem.V.mesh().comm
        self.timings: dict[str, float] = {}
        self.R = None
        self._P = None

    # --- offline ---------------------------------------------------------------------------

    def offline(self) -> "GMsFEM":
        """Build neighbourhoods, local bases and R (once; later calls return at once)."""
        if self.R is not None:
            return self
        V = self.problem.V
        t0 = time.perf_counter()
        # κ-independent: computed once per (pair, space, Dirichlet part) and reused across samples
        key = ("gmsfem", id(V), type(self.problem.boundary).__name__,
               getattr(self.problem.boundary, "dirichlet_marker", None))
        if key not in self.pair.cache:
            geometry = FineGeometry.gather(self.pair, V, self.problem.bcs)
            # the last entry collects κ-independent index arrays (patch layout, R's sparsity)
            self.pair.cache[key] = (V, geometry, build_neighbourhoods(self.pair, geometry), {})
        _, self.geometry, self.neighbourhoods, layout = self.pair.cache[key]
        t1 = time.perf_counter()
        for nbh in self.neighbourhoods:
            if self.n_basis > nbh.size:
                raise ValueError(
                    f"n_basis={self.n_basis} exceeds the {nbh.size} fine DOFs of neighbourhood "
                    f"{nbh.index} ({nbh.kind}, vertex {nbh.vertex.tolist()})")
        blocks = np.array_split(np.arange(len(self.neighbourhoods)), self.comm.size)
        self.mine = blocks[self.comm.rank].tolist()
        self.patches = PatchSet(self.neighbourhoods, self.mine, self.problem.kappa, self.geometry,
                                self.pair, V, cache=layout)
        bases = self.provider.local_bases(self.patches, self.n_basis)
        t2 = time.perf_counter()
        check_bases(bases, self.neighbourhoods, self.mine, self.n_basis,
                    getattr(self.provider, "name", type(self.provider).__name__))
        self.bases = bases
        self.R = restriction_matrix(bases, self.neighbourhoods, self.mine, self.n_basis,
                                    self.geometry, V, self.comm, cache=layout)
        self._P = self.R.transpose(PETSc.Mat())  # (no argument would transpose R in place)
        t3 = time.perf_counter()
        provider_time = t2 - t1 - self.patches.assembly_time
        self.timings.update(geometry=t1 - t0, local_assembly=self.patches.assembly_time,
                            provider=provider_time, restriction=t3 - t2,
                            factorization=bases.timings.get("factorization", 0.0),
                            eigensolve=bases.timings.get("eigensolve", 0.0),
                            offline=t3 - t1)
        return self

    @property
    def n_coarse(self) -> int:
        """Dimension of the multiscale space (N_v · n_basis)."""
        return len(self.neighbourhoods) * self.n_basis

    # --- online ----------------------------------------------------------------------------

    def _fine_matrix(self, form) -> PETSc.Mat:
        return fd.assemble(form, mat_type="aij").petscmat

    def _coarse_matrix(self, A: PETSc.Mat) -> PETSc.Mat:
        return A.ptap(self._P)

    def _restrict(self, cofunction) -> PETSc.Vec:
        with cofunction.dat.vec_ro as b:
            out = self.R.createVecLeft()
            self.R.mult(b, out)
        return out

    def _prolong(self, u0: PETSc.Vec, u: fd.Function) -> fd.Function:
        with u.dat.vec_wo as x:
            self._P.mult(u0, x)
        return u

    def _coarse_solver(self, A0: PETSc.Mat) -> PETSc.KSP:
        ksp = PETSc.KSP().create(comm=self.comm)
        ksp.setOperators(A0)
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("lu")
        if PETSc.Sys.hasExternalPackage("mumps"):
            pc.setFactorSolverType("mumps")
        ksp.setOptionsPrefix("gmsfem_coarse_")
        ksp.setFromOptions()
        return ksp

    def coarse_system(self, state=None):
        """(A_0, f_0) = (R A Rᵀ, R b) with A assembled at ``state`` (for Richards)."""
        self.offline()
        V = self.problem.V
        w, v = fd.TrialFunction(V), fd.TestFunction(V)
        A0 = self._coarse_matrix(self._fine_matrix(self.problem.stiffness(w, v, state=state)))
        f0 = self._restrict(fd.assemble(self.problem.load(v)))
        return A0, f0

    def solve(self, rtol: float = 1e-8, max_iterations: int = 200, progress: bool = True) -> SolveResult:
        """The multiscale solution on the fine mesh.

        ``rtol``/``max_iterations`` apply to the Picard iterations of nonlinear problems: stop
        when ‖R F(u_k)‖ ≤ rtol ‖R b‖. ``progress`` shows a bar over heat time steps.
        """
        self.offline()
        t0 = time.perf_counter()
        if isinstance(self.problem, Heat):
            result = self._solve_heat(progress)
        elif self.problem.linear:
            A0, f0 = self.coarse_system()
            u0 = A0.createVecRight()
            self._coarse_solver(A0).solve(f0, u0)
            result = SolveResult(self._prolong(u0, fd.Function(self.problem.V, name="u_ms")))
        else:
            result = self._solve_picard(rtol, max_iterations)
        result.timings["online"] = time.perf_counter() - t0
        self.timings["online"] = result.timings["online"]
        return result

    def _solve_picard(self, rtol, max_iterations) -> SolveResult:
        V = self.problem.V
        u = fd.Function(V, name="u_ms")
        w, v = fd.TrialFunction(V), fd.TestFunction(V)
        f0 = self._restrict(fd.assemble(self.problem.load(v)))
        scale = f0.norm()
        residuals = []
        u0 = None
        for iteration in range(max_iterations + 1):
            A0 = self._coarse_matrix(self._fine_matrix(self.problem.stiffness(w, v, state=u)))
            if u0 is not None:
                # coarse residual of the current iterate: R (A(u) u − b) = A_0(u) u_0 − f_0
                r0 = f0.duplicate()
                A0.mult(u0, r0)
                r0.axpy(-1.0, f0)
                residuals.append(r0.norm())
                if residuals[-1] <= rtol * scale:
                    return SolveResult(u, iterations=iteration, residuals=residuals)
            if iteration == max_iterations:
                break
            u0 = A0.createVecRight()
            self._coarse_solver(A0).solve(f0, u0)
            self._prolong(u0, u)
        raise ConvergenceError("GMsFEM Picard iterations did not converge for "
                               f"{self.problem.name}", max_iterations, residuals[-1])

    def _solve_heat(self, progress) -> SolveResult:
        problem = self.problem
        V = problem.V
        w, v = fd.TrialFunction(V), fd.TestFunction(V)
        M0 = self._coarse_matrix(self._fine_matrix(problem.mass(w, v)))
        K0 = self._coarse_matrix(self._fine_matrix(problem.stiffness(w, v)))
        f0 = self._restrict(fd.assemble(problem.load(v)))
        # initial state: L2 projection onto the multiscale space
        u_init = fd.Function(V)
        if isinstance(problem.initial, fd.Function):
            u_init.assign(problem.initial)
        else:
            u_init.interpolate(problem.initial)
        u0 = M0.createVecRight()
        self._coarse_solver(M0).solve(self._restrict(fd.assemble(problem.mass(u_init, v))), u0)
        lhs = M0.copy()
        lhs.axpy(problem.dt, K0)
        ksp = self._coarse_solver(lhs)
        rhs, nxt = u0.duplicate(), u0.duplicate()
        for _ in tqdm(range(problem.n_steps), desc="GMsFEM heat: backward Euler", unit="step",
                      disable=not progress or self.comm.rank != 0, leave=False):
            M0.mult(u0, rhs)
            rhs.axpy(problem.dt, f0)
            ksp.solve(rhs, nxt)
            nxt.copy(u0)
        return SolveResult(self._prolong(u0, fd.Function(V, name="u_ms")), iterations=problem.n_steps)
