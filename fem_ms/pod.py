"""Global POD: a fixed linear space from snapshots of fine solutions, and intrusive POD solves on it.

Proper orthogonal decomposition (Volkwein 2013; the GMsFEM-NO paper's "global POD" baseline,
its appendix F): the first m left singular vectors of the snapshot matrix X = [u_1 … u_S] (fine
DOFs × samples) span a space V_m that is the same for every κ. Online, for a new κ (and f), the
fine finite element system is projected on V_m by Galerkin, (Pᵀ A P) c = Pᵀ b, and u ≈ P c:
*intrusive* POD, because it needs the fine operator A of the new κ.

:class:`PODSpace` is a :class:`~fem_ms.gmsfem.space.ReducedSpace`, so GMsFEM's coarse models
(:mod:`fem_ms.gmsfem.coarse`) solve on it unchanged: one factorised linear solve for diffusion,
Picard iterations (the conductivity κ k(u) re-assembled on the fine mesh at each iterate) for
Richards, backward Euler for the heat equation. The online cost is therefore the fine assembly
of A(κ) (no hyper-reduction: Galerkin POD of a κ that varies in every cell has no affine
decomposition to exploit) plus m × m dense work, against GMsFEM's local eigenproblems plus a
sparse coarse solve.

The modes are orthonormal in the Euclidean inner product of the fine DOF vectors (the
classical choice; the Galerkin solution depends on the span only, the truncation on the inner
product). They are computed by the method of snapshots — the S × S Gram matrix XᵀX summed
over the ranks, its eigenvectors W, P = X W Σ⁻¹ — then orthonormalised once more against
rounding (Cholesky QR twice), which keeps the parallel cost at one S × S reduction.
"""

from __future__ import annotations

import numpy as np

import firedrake as fd
from firedrake.petsc import PETSc

from .checks import check_int, check_real
from .gmsfem.space import ReducedSpace
from .problems import DirichletBoundary, RobinBoundary, dirichlet_conditions

__all__ = ["PODSpace"]


class PODSpace(ReducedSpace):
    """The span of the leading POD modes of fine snapshots on ``V``, for Galerkin (intrusive) solves.

    Parameters
    ----------
    V : firedrake.FunctionSpace
        Scalar P1/Q1 fine space the snapshots live on.
    snapshots : sequence of firedrake.Function, or ndarray (S, owned DOFs)
        Fine solutions on ``V`` (an array holds each rank's owned DOF values in ``V``'s order).
        Their values on the Dirichlet DOFs are set to 0: every function of the space satisfies
        the homogeneous Dirichlet condition exactly.
    n_modes : int, optional
        Modes kept (default: every mode above the rank tolerance, i.e. the snapshots' span).
    boundary : DirichletBoundary or RobinBoundary, optional
        Where the problems solved on this space have homogeneous Dirichlet conditions (default:
        the whole boundary).
    rank_tolerance : float
        Singular values below this fraction of the largest are rounding: their modes are not
        formed (the method of snapshots resolves σ_i / σ_1 down to about 1e-8).

    Attributes
    ----------
    singular_values : ndarray
        All singular values of the snapshot matrix (its Dirichlet rows zeroed), descending.
    modes : ndarray (owned DOFs, n_modes)
        This rank's rows of P, orthonormal columns.
    n_modes : int

    Raises
    ------
    ValueError
        If the snapshots are empty, of the wrong size, not finite or all zero, or ``n_modes``
        exceeds the number of independent snapshots.
    """

    def __init__(self, V, snapshots, n_modes: int | None = None, boundary=None, rank_tolerance: float = 1e-7):
        if not isinstance(V, fd.functionspaceimpl.WithGeometry):
            raise TypeError(f"V must be a firedrake FunctionSpace, got {type(V).__name__}")
        if V.value_shape != ():
            raise ValueError(f"POD spaces are built on scalar spaces, V has value shape {V.value_shape}")
        boundary = DirichletBoundary() if boundary is None else boundary
        if not isinstance(boundary, (DirichletBoundary, RobinBoundary)):
            raise TypeError(f"boundary must be DirichletBoundary or RobinBoundary, got {boundary!r}")
        value = getattr(boundary, "value", 0.0)
        if not (isinstance(value, (int, float)) and value == 0):
            raise ValueError(f"POD spaces support homogeneous Dirichlet conditions (value 0), got {value!r}")
        rank_tolerance = check_real("rank_tolerance", rank_tolerance, positive=True, high=1.0)
        self.V, self.boundary, self.comm = V, boundary, V.mesh().comm
        self.dirichlet_conditions = dirichlet_conditions(V, boundary)

        X = self._snapshot_matrix(snapshots)
        owned = V.dof_dset.size
        for bc in self.dirichlet_conditions:
            nodes = bc.nodes
            X[nodes[nodes < owned]] = 0.0
        gram = self.comm.allreduce(X.T @ X)
        eigenvalues, W = np.linalg.eigh(gram)
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues, W = np.clip(eigenvalues[order], 0.0, None), W[:, order]
        self.singular_values = np.sqrt(eigenvalues)
        if not self.singular_values[0] > 0:
            raise ValueError("the snapshots are all zero (off the Dirichlet boundary): they span no space")
        rank = int(np.count_nonzero(self.singular_values > rank_tolerance * self.singular_values[0]))
        if n_modes is None:
            n_modes = rank
        n_modes = check_int("n_modes", n_modes)
        if n_modes > rank:
            raise ValueError(f"n_modes={n_modes} exceeds the {rank} independent snapshots (of {X.shape[1]}; singular "
                             f"values above {rank_tolerance:g} of the largest)")
        P = X @ (W[:, :n_modes] / self.singular_values[:n_modes])
        for _ in range(2):  # Cholesky QR twice: orthonormal to rounding after the Gram's squared condition
            factor = np.linalg.cholesky(self.comm.allreduce(P.T @ P))
            P = np.linalg.solve(factor, P.T).T
        self.modes, self.n_modes = P, n_modes
        self._P = PETSc.Mat().createDense(((owned, V.dim()), (None, n_modes)), array=np.asfortranarray(P),
                                          comm=self.comm)
        self._P.assemble()

    @classmethod
    def from_grids(cls, V, grids, n_modes: int | None = None, boundary=None, **kwargs) -> PODSpace:
        """The POD space of snapshots given as vertex-grid arrays (S, n+1, n+1) (the ``u`` of a
        ``multilevel`` dataset) on the structured space ``V`` with n cells per side."""
        from .coefficients import vertex_grid_indices

        grids = np.asarray(grids, dtype=float)
        if grids.ndim < 3 or grids.shape[0] == 0:
            raise ValueError(f"grids must be an array (samples, *vertex grid) with at least one sample, got shape "
                             f"{grids.shape}")
        idx = vertex_grid_indices(V, tuple(s - 1 for s in grids.shape[1:]))
        owned = V.dof_dset.size
        values = grids[(slice(None),) + tuple(i[:owned] for i in idx)]
        return cls(V, values, n_modes=n_modes, boundary=boundary, **kwargs)

    def _snapshot_matrix(self, snapshots) -> np.ndarray:
        """Owned DOFs × samples, checked."""
        owned = self.V.dof_dset.size
        if isinstance(snapshots, np.ndarray):
            X = np.array(snapshots, dtype=float).T
        else:
            columns = []
            for i, u in enumerate(snapshots):
                if not isinstance(u, fd.Function) or u.function_space() != self.V:
                    raise ValueError(f"snapshot {i} is not a Function on the POD space's V ({u!r})")
                columns.append(np.array(u.dat.data_ro[:owned]))
            X = np.stack(columns, axis=1) if columns else np.empty((owned, 0))
        if X.ndim != 2 or X.shape[0] != owned or X.shape[1] == 0:
            raise ValueError(f"snapshots must be (samples ≥ 1, {owned} owned DOFs), got shape {X.T.shape}")
        bad = self.comm.allreduce(int(np.count_nonzero(~np.isfinite(X))))
        if bad:
            raise ValueError(f"the snapshots have {bad} non-finite (NaN or inf) values")
        return X

    @property
    def dimension(self) -> int:
        """The number of modes."""
        return self.n_modes

    def matches_kappa(self, kappa) -> bool:
        """Always true for κ on the fine mesh: the POD space does not depend on κ."""
        return kappa.function_space().mesh() is self.V.mesh()

    def energy(self, n_modes: int | None = None) -> float:
        """Fraction of the snapshots' squared Frobenius norm the first ``n_modes`` modes hold."""
        n_modes = self.n_modes if n_modes is None else check_int("n_modes", n_modes)
        squares = self.singular_values ** 2
        return float(squares[:n_modes].sum() / squares.sum())

    def restrict(self, cofunction) -> PETSc.Vec:
        """Pᵀ b: a fine load vector (an assembled :class:`firedrake.Cofunction`) in POD coordinates."""
        out = self._P.createVecRight()
        with cofunction.dat.vec_ro as b:
            self._P.multTranspose(b, out)
        return out

    def project(self, A: PETSc.Mat) -> PETSc.Mat:
        """Pᵀ A P (n_modes × n_modes, dense in content, stored AIJ for the coarse direct solvers)."""
        reduced = self._P.transposeMatMult(A.matMult(self._P))
        return reduced.convert(PETSc.Mat.Type.AIJ)

    def mode(self, j: int) -> fd.Function:
        """The j-th POD mode as a fine Function."""
        if not 0 <= j < self.n_modes:
            raise IndexError(f"mode {j} outside the {self.n_modes} modes")
        phi = fd.Function(self.V, name=f"pod_mode_{j}")
        with phi.dat.vec_wo as x:
            self._P.getColumnVector(j, x)
        return phi
