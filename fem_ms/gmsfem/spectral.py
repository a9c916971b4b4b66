"""Local spectral problems A_i φ = λ S_i φ of GMsFEM, assembled by Firedrake and solved by SLEPc.

A_i (κ-weighted Neumann stiffness) and S_i (κ-weighted mass) of every neighbourhood are sums of
element matrices. Those come from one compiled Firedrake form per matrix, assembled once on the
*broken* (discontinuous) P1/Q1 space, whose matrix is block diagonal with exactly the element
matrices as blocks. Scattering the blocks of ω_i's cells gives A_i and S_i at a cost
proportional to the patch size: no per-neighbourhood global assembly, no loop over cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import ufl

import firedrake as fd
from finat.ufl import BrokenElement
from firedrake.petsc import PETSc

from ..petsc_options import SolverOptions, petsc_error_summary
from .neighbourhoods import FineGeometry, Neighbourhood

__all__ = ["ElementMatrices", "local_matrices", "SpectralSolver", "SpectralConvergenceError", "SpectralSolveError",
           "DEFAULT_EPS_OPTIONS"]


@dataclass
class ElementMatrices:
    """κ-weighted stiffness and mass element matrices of every fine cell (global cell order)."""

    stiffness: np.ndarray  # (cells, k, k)
    mass: np.ndarray  # (cells, k, k)

    @classmethod
    def assemble(cls, V, kappa, geometry: FineGeometry) -> ElementMatrices:
        """Assemble on this rank's cells and gather from all ranks."""
        mesh = V.mesh()
        if mesh.ufl_cell().cellname == "hexahedron":
            # Firedrake allows only Q/DQ families on hexahedra; equispaced DQ1 has Q1's nodes
            W = fd.FunctionSpace(mesh, "DQ", 1, variant="equispaced")
        else:
            W = fd.FunctionSpace(mesh, BrokenElement(V.ufl_element()))
        u, v = fd.TrialFunction(W), fd.TestFunction(W)
        forms = (kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, kappa * u * v * ufl.dx)
        n_owned = geometry.owned_cells.stop - geometry.owned_cells.start
        dg0 = fd.FunctionSpace(mesh, "DG", 0).cell_node_map().values[:n_owned, 0]
        wmap = W.cell_node_map().values[:n_owned]  # local W DOFs of owned cells, element order
        k = wmap.shape[1]
        out = []
        for form in forms:
            M = fd.assemble(form, mat_type="aij").petscmat
            indptr, indices, data = M.getValuesCSR()
            rstart = M.getOwnershipRange()[0]
            # Block-diagonal: each row holds exactly the k entries of its cell's block, sorted by
            # global column; reorder them into the element's local order.
            rows = W.dof_dset.lgmap.apply(wmap.ravel().astype(np.int32)).reshape(n_owned, k) - rstart
            if not np.all(np.diff(indptr) == k):
                raise RuntimeError("broken-space matrix is not block diagonal with element blocks")
            cols = indices.reshape(-1, k)[rows]  # (cells, k rows, k cols) global columns
            vals = data.reshape(-1, k)[rows]
            gcols = rows + rstart  # global index of each local DOF of the cell
            pos = np.argsort(np.argsort(gcols, axis=1), axis=1)  # rank of each local DOF
            order = np.argsort(cols, axis=2)
            vals = np.take_along_axis(vals, order, axis=2)
            blocks = np.take_along_axis(vals, pos[:, None, :].repeat(k, axis=1), axis=2)
            local = np.empty_like(blocks)
            local[dg0] = blocks
            out.append(np.concatenate(mesh.comm.allgather(local)))
        return cls(*out)


def local_matrices(nbh: Neighbourhood, geometry: FineGeometry, elements: ElementMatrices):
    """A_i and S_i of one neighbourhood as scipy CSR matrices in ω_i's DOF order."""
    cell_dofs = geometry.cell_dofs[nbh.cells]
    loc = nbh.local_index(cell_dofs.ravel()).reshape(cell_dofs.shape)
    k = loc.shape[1]
    rows = np.repeat(loc, k, axis=1).ravel()
    cols = np.tile(loc, (1, k)).ravel()
    n = nbh.size
    A = sp.csr_matrix((elements.stiffness[nbh.cells].ravel(), (rows, cols)), shape=(n, n))
    S = sp.csr_matrix((elements.mass[nbh.cells].ravel(), (rows, cols)), shape=(n, n))
    return A, S


class SpectralConvergenceError(RuntimeError):
    """SLEPc found fewer eigenpairs than asked for in a neighbourhood."""


class SpectralSolveError(RuntimeError):
    """SLEPc (or the factorization under it) failed in a neighbourhood; the PETSc error is chained."""


def _default_factorization() -> str:
    # Measured (docs/benchmarks.md): for many small local problems CHOLMOD's sequential
    # Cholesky is the fastest factorization PETSc offers here; MUMPS pays a per-call overhead.
    return "cholmod" if PETSc.Sys.hasExternalPackage("cholmod") else "petsc"


DEFAULT_EPS_OPTIONS = {
    "eps_type": "krylovschur",
    "eps_gen_hermitian": None,
    "eps_target": -1e-3,  # just below λ_1 = 0: A_i − σ S_i is SPD, so Cholesky applies
    "eps_target_magnitude": None,
    "eps_tol": 1e-10,
    "st_type": "sinvert",
    "st_ksp_type": "preonly",
    "st_pc_type": "cholesky",
}


class SpectralSolver:
    """Smallest eigenpairs of A φ = λ S φ with SLEPc (shift-and-invert Krylov–Schur).

    Parameters
    ----------
    options : dict, optional
        SLEPc/PETSc options (without prefix) overriding :data:`DEFAULT_EPS_OPTIONS`. Each
        solver keeps its own: they are in PETSc's options database only while its eigensolves
        are set up and run (:class:`fem_ms.petsc_options.SolverOptions`), so two solvers in one
        process never share options. An option SLEPc does not read raises
        :class:`~fem_ms.petsc_options.UnusedOptionsError` at the first solve.
    options_prefix : str
        Prefix under which the options are set; command-line options with this prefix
        (e.g. ``-gmsfem_eps_tol 1e-12``) override both.
    """

    def __init__(self, options: dict | None = None, options_prefix: str = "gmsfem_"):
        from slepc4py import SLEPc

        self._SLEPc = SLEPc
        self._options = SolverOptions({**DEFAULT_EPS_OPTIONS, "st_pc_factor_mat_solver_type": _default_factorization()},
                                      options, options_prefix, "the SLEPc eigensolver")
        self.options_prefix = self._options.prefix
        self.timings = {"factorization": 0.0, "eigensolve": 0.0}
        self.iterations = 0

    @property
    def options(self) -> dict:
        """The options in effect (defaults, the caller's, the command line's), without prefix."""
        return self._options.parameters

    def solve(self, A: sp.csr_matrix, S: sp.csr_matrix, n: int, name: str = "problem", initial=None):
        """The ``n`` smallest eigenvalues and S-orthonormal eigenvectors (columns).

        ``initial`` (size × K array), optional: a starting subspace (``EPSSetInitialSpace``), e.g. a
        learned prediction; Krylov–Schur starts from its first vector combination SLEPc forms.
        ``self.iterations`` accumulates SLEPc's iteration counts.

        Raises
        ------
        SpectralConvergenceError
            Naming ``name`` and the number of converged pairs, if fewer than ``n`` converge.
        """
        SLEPc = self._SLEPc
        size = A.shape[0]
        if n > size:
            raise ValueError(f"{name}: asked for {n} eigenpairs of a problem with {size} DOFs")
        Am = PETSc.Mat().createAIJ(A.shape, csr=(A.indptr, A.indices, A.data), comm=PETSc.COMM_SELF)
        Sm = PETSc.Mat().createAIJ(S.shape, csr=(S.indptr, S.indices, S.data), comm=PETSc.COMM_SELF)
        eps = SLEPc.EPS().create(comm=PETSc.COMM_SELF)
        try:
            eps.setOperators(Am, Sm)
            eps.setDimensions(n)
            if initial is not None:
                eps.setInitialSpace([PETSc.Vec().createWithArray(np.ascontiguousarray(v), comm=PETSc.COMM_SELF)
                                     for v in np.asarray(initial, dtype=float).T])
            try:
                with self._options.configure(eps):
                    t0 = time.perf_counter()
                    eps.setUp()  # the shift-and-invert factorization happens here
                    t1 = time.perf_counter()
                    eps.solve()
                    t2 = time.perf_counter()
            except (PETSc.Error, SystemError) as exc:  # petsc4py raises SystemError for some setUp errors
                raise SpectralSolveError(f"SLEPc failed in {name} ({size} DOFs): {petsc_error_summary(exc)}; "
                                         f"options in effect: {self.options}") from exc
            self.timings["factorization"] += t1 - t0
            self.timings["eigensolve"] += t2 - t1
            self.iterations += eps.getIterationNumber()
            nconv = eps.getConverged()
            if nconv < n:
                raise SpectralConvergenceError(
                    f"SLEPc converged {nconv} of {n} eigenpairs in {name} "
                    f"({size} DOFs, reason {eps.getConvergedReason()}); raise {self.options_prefix}eps_max_it "
                    f"or loosen {self.options_prefix}eps_tol")
            vals = np.empty(n)
            vecs = np.empty((size, n))
            vr = Am.createVecRight()
            for j in range(n):
                vals[j] = eps.getEigenpair(j, vr).real
                vecs[:, j] = vr.array_r
            vr.destroy()
        finally:
            eps.destroy(), Am.destroy(), Sm.destroy()
        order = np.argsort(vals)
        return vals[order], vecs[:, order]
