"""The multiscale space V_ms = span{ψ_j^i = χ_i φ_j^i}: GMsFEM's offline stage for one κ.

A :class:`MultiscaleSpace` is built once per (mesh pair, fine space, κ, basis provider, N_bf,
Dirichlet part of the boundary) and then serves any number of online solves: every right-hand
side, Robin datum, nonlinearity or time-stepping scheme on the same κ (the coarse models of
:mod:`.coarse`). It plays the role of a reductor in pyMOR's sense: ``project`` builds coarse
operators, ``reconstruct`` maps coarse coefficients back to the fine space.

R is a PETSc Mat with row ``i * n_basis + j`` holding ψ_j^i on the fine DOFs; rows are
distributed over the ranks in the blocks of neighbourhoods each rank owns, columns follow the
fine space's PETSc layout. Dirichlet DOFs are dropped from every row, so every multiscale
function satisfies the homogeneous Dirichlet condition exactly.
"""

from __future__ import annotations

import time

import numpy as np

import firedrake as fd
from firedrake.petsc import PETSc

from ..checks import check_int
from ..meshes import NestedMeshes
from ..problems import DirichletBoundary, check_kappa, dirichlet_conditions
from .layout import SpaceLayout
from .neighbourhoods import FineGeometry, Neighbourhood
from .patches import PatchSet
from .providers import LocalBases, provider_from
from .verification import ritz_check

__all__ = ["ReducedSpace", "MultiscaleSpace", "DegenerateSpaceError", "check_bases", "restriction_matrix"]

# the χ_i φ_j of a neighbourhood whose smallest singular value is below this fraction of the
# largest are taken as dependent
_RANK_TOLERANCE = 1e-6


class DegenerateSpaceError(ValueError):
    """The multiscale functions of a neighbourhood are linearly dependent (or vanish)."""


class ReducedSpace:
    """A linear subspace of a fine finite element space, the seam the coarse models project on.

    A reduced space of dimension m on the scalar fine space ``V`` gives ``restrict`` (a fine load
    vector b → its m coefficients), ``project`` (a fine operator A → the m × m reduced operator)
    and ``reconstruct`` (m coefficients → the fine function), all through P, the fine DOFs ×
    m matrix whose columns span the space. GMsFEM's :class:`MultiscaleSpace` (P = Rᵀ, sparse,
    built for one κ) and global POD's :class:`fem_ms.pod.PODSpace` (P dense, the same for
    every κ) are the two kinds; the coarse models of :mod:`.coarse` (linear, Picard, time
    stepping) serve both, so an intrusive POD solve and a GMsFEM solve differ in the space
    alone.

    Every function of a reduced space vanishes on its Dirichlet DOFs
    (:attr:`dirichlet_conditions`, homogeneous).

    Attributes
    ----------
    V : firedrake.FunctionSpace
        The fine space.
    comm : MPI communicator
        Of the fine mesh.
    dirichlet_conditions : list of firedrake.DirichletBC
        Where the space's functions vanish.
    """

    V: object
    comm: object
    dirichlet_conditions: list
    _P: PETSc.Mat  # fine DOFs × dimension; its columns span the space

    @property
    def dimension(self) -> int:  # pragma: no cover - every space overrides it
        """Number of reduced coefficients."""
        raise NotImplementedError

    def matches_kappa(self, kappa) -> bool:  # pragma: no cover - every space overrides it
        """Whether a problem with permeability ``kappa`` may be projected on this space."""
        raise NotImplementedError

    def restrict(self, cofunction) -> PETSc.Vec:  # pragma: no cover - every space overrides it
        """Pᵀ b: a fine load vector (an assembled :class:`firedrake.Cofunction`) in reduced coordinates."""
        raise NotImplementedError

    def project(self, A: PETSc.Mat) -> PETSc.Mat:  # pragma: no cover - every space overrides it
        """Pᵀ A P: a fine operator (assembled without boundary conditions) on the reduced space, as
        a sparse (AIJ) matrix for the direct solvers."""
        raise NotImplementedError

    def coarse_vector(self) -> PETSc.Vec:
        """A zero vector of reduced coefficients (distributed as P's columns)."""
        vec = self._P.createVecRight()
        vec.zeroEntries()
        return vec

    def reconstruct(self, u0, name: str = "u_ms") -> fd.Function:
        """P u_0: the fine function with reduced coefficients ``u0``.

        ``u0`` is a PETSc Vec laid out as :meth:`coarse_vector`, or an array of all
        :attr:`dimension` coefficients (the same on every rank).
        """
        if not isinstance(u0, PETSc.Vec):
            values = np.asarray(u0, dtype=float)
            if values.shape != (self.dimension,):
                raise ValueError(f"coarse coefficients must have shape ({self.dimension},), got {values.shape}")
            vec = self.coarse_vector()
            lo, hi = vec.getOwnershipRange()
            vec.array[:] = values[lo:hi]
            u0 = vec
        elif u0.getSize() != self.dimension:
            raise ValueError(f"coarse vector of size {u0.getSize()}, the space has dimension {self.dimension}")
        u = fd.Function(self.V, name=name)
        with u.dat.vec_wo as x:
            self._P.mult(u0, x)
        return u

    def reduce(self, problem):
        """The coarse model of ``problem`` in this space (:func:`.coarse.coarse_model`)."""
        from .coarse import coarse_model

        return coarse_model(self, problem)


class MultiscaleSpace(ReducedSpace):
    """GMsFEM's multiscale space for one κ: neighbourhoods, local bases and R, built once.

    Parameters
    ----------
    pair : NestedMeshes
        The coarse/fine meshes.
    V : firedrake.FunctionSpace
        Scalar P1/Q1 space on ``pair.fine``.
    kappa : firedrake.Function
        The permeability the local problems are built from.
    n_basis : int
        Local basis functions per neighbourhood (N_bf).
    basis : str or BasisProvider
        Provider name from the ``fem_ms.basis_providers`` entry points (``"slepc"`` built in)
        or a provider object.
    provider_options : dict, optional
        Keyword arguments for the provider's constructor when ``basis`` is a name.
    boundary : DirichletBoundary or RobinBoundary
        Where the problems solved in this space have (homogeneous) Dirichlet conditions: the
        multiscale functions vanish there.

    Attributes
    ----------
    layout : SpaceLayout
        The κ-independent part, shared by every space on the same pair (:mod:`.layout`).
    patches : PatchSet
        What the provider was given.
    bases : LocalBases
        What the provider returned (the φ_j^i, and eigenvalues where known).
    R : petsc4py.PETSc.Mat
        The restriction matrix (dimension × fine DOFs).
    timings : dict
        Wall seconds of the offline phases: ``geometry`` (the layout; ~0 when reused),
        ``local_assembly``, ``provider`` (the provider's own time, assembly excluded),
        ``factorization`` and ``eigensolve`` (SLEPc's share, where the provider reports them),
        ``indicator`` (the a-posteriori indicator, where the provider did not compute it),
        ``restriction`` (R), ``offline`` (all but ``geometry``), plus any other phase the
        provider reports.
    """

    def __init__(self, pair: NestedMeshes, V, kappa, n_basis: int = 8, basis="slepc",
                 provider_options: dict | None = None, boundary=None):
        if not isinstance(pair, NestedMeshes):
            raise TypeError(f"pair must be NestedMeshes (see fem_ms.meshes), got {type(pair).__name__}")
        if V.mesh() is not pair.fine:
            raise ValueError("the function space is not on the fine mesh of this pair")
        if V.ufl_element().degree() != 1 or V.value_shape != ():
            raise ValueError("GMsFEM is implemented for scalar P1/Q1 fine spaces")
        check_kappa(kappa, pair.fine)
        n_basis = check_int("n_basis", n_basis)
        boundary = DirichletBoundary() if boundary is None else boundary
        value = getattr(boundary, "value", 0.0)
        if isinstance(boundary, DirichletBoundary) and not (isinstance(value, (int, float)) and value == 0):
            raise ValueError("GMsFEM supports homogeneous Dirichlet conditions (value 0)")
        self.pair, self.V, self.kappa, self.n_basis = pair, V, kappa, int(n_basis)
        self.boundary = boundary
        self.comm = V.mesh().comm
        self.provider = provider_from(basis, provider_options)
        self.timings: dict[str, float] = {}

        self._kappa_values = np.array(kappa.dat.data_ro)  # to notice a κ changed after the offline stage
        self.dirichlet_conditions = dirichlet_conditions(V, boundary)
        t0 = time.perf_counter()
        self.layout = SpaceLayout.of(pair, V, self.dirichlet_conditions)
        t1 = time.perf_counter()
        usable = self.layout.cached("usable DOFs", lambda: _usable_dofs(self.layout))
        for nbh in self.neighbourhoods:
            if self.n_basis > nbh.size:
                raise ValueError(
                    f"n_basis={self.n_basis} exceeds the {nbh.size} fine DOFs of neighbourhood "
                    f"{nbh.index} ({nbh.kind}, vertex {nbh.vertex.tolist()})")
            if usable[nbh.index] < self.n_basis:  # the χ_i φ_j live on these DOFs only: known before any eigensolve
                raise DegenerateSpaceError(
                    f"neighbourhood {nbh.index} ({nbh.kind}, vertex {nbh.vertex.tolist()}) has {usable[nbh.index]} "
                    f"fine DOFs where χ_i is nonzero and no Dirichlet condition holds, fewer than "
                    f"n_basis={self.n_basis}: its "
                    f"multiscale functions would be dependent and the coarse system singular. Use a fine mesh "
                    f"several times finer than the coarse one, or a smaller n_basis")
        self.owned = self.layout.owned_neighbourhoods()
        self.patches = PatchSet(self.layout, self.owned, kappa, V)
        bases = self.provider.local_bases(self.patches, self.n_basis)
        name = getattr(self.provider, "name", type(self.provider).__name__)
        check_bases(bases, self.neighbourhoods, self.owned, self.n_basis, name)
        t_indicator, provider_assembly = time.perf_counter(), self.patches.assembly_time
        unchecked = bases.verification is not None and bases.verification.policy == "off"  # the caller's choice
        missing = [] if unchecked else [i for i in self.owned if i not in bases.residuals]
        for i in missing:  # the a-posteriori indicator of every provider (verification.py)
            A, S = self.patches.local_matrices(i)
            bases.residuals[i] = ritz_check(A, S, bases.vectors[i], self.n_basis).residuals
        t2 = time.perf_counter()
        if missing:
            bases.timings["indicator"] = t2 - t_indicator
        pattern = _restriction_pattern(self.layout, self.owned, self.n_basis)
        data = pattern.values(bases)
        _check_independent(data, pattern, bases, self.neighbourhoods, self.layout.geometry, name)
        self.bases = bases
        self.R = pattern.matrix(data, V)
        self._P = pattern.transposed_matrix(data, V) if self.comm.size == 1 \
            else self.R.transpose(PETSc.Mat())  # (no argument would transpose R in place)
        t3 = time.perf_counter()
        self.timings.update({k: v for k, v in bases.timings.items()})
        self.timings.update(geometry=t1 - t0, local_assembly=self.patches.assembly_time,
                            provider=t_indicator - t1 - provider_assembly, restriction=t3 - t2, offline=t3 - t1)
        self.timings.setdefault("factorization", 0.0)
        self.timings.setdefault("eigensolve", 0.0)

    @classmethod
    def for_problem(cls, problem, pair: NestedMeshes, n_basis: int = 8, basis="slepc",
                    provider_options: dict | None = None) -> MultiscaleSpace:
        """The space for ``problem``'s fine space, κ and Dirichlet boundary."""
        return cls(pair, problem.V, problem.kappa, n_basis, basis, provider_options, problem.boundary)

    # --- what the space is ------------------------------------------------------------------

    @property
    def neighbourhoods(self) -> list[Neighbourhood]:
        """All coarse neighbourhoods (every rank knows all of them)."""
        return self.layout.neighbourhoods

    @property
    def geometry(self) -> FineGeometry:
        """The fine mesh in a global numbering."""
        return self.layout.geometry

    @property
    def dimension(self) -> int:
        """Dimension of the multiscale space: N_v · n_basis."""
        return len(self.neighbourhoods) * self.n_basis

    def matches_kappa(self, kappa) -> bool:
        """Whether ``kappa`` has, on every rank, the values the space was built from."""
        from mpi4py import MPI

        same = (kappa.function_space() == self.kappa.function_space()
                and np.array_equal(np.asarray(kappa.dat.data_ro), self._kappa_values))
        return bool(self.comm.allreduce(same, op=MPI.LAND))

    # --- maps between the fine and the coarse space -----------------------------------------

    def restrict(self, cofunction) -> PETSc.Vec:
        """R b: a fine load vector (an assembled :class:`firedrake.Cofunction`) in coarse coordinates."""
        out = self.R.createVecLeft()
        with cofunction.dat.vec_ro as b:
            self.R.mult(b, out)
        return out

    def project(self, A: PETSc.Mat) -> PETSc.Mat:
        """R A Rᵀ: a fine operator (assembled without boundary conditions) on the coarse space."""
        return A.ptap(self._P)

    def basis_function(self, i: int, j: int) -> fd.Function:
        """ψ_j^i = χ_i φ_j^i as a fine Function (collective over the fine mesh's ranks)."""
        if not 0 <= i < len(self.neighbourhoods) or not 0 <= j < self.n_basis:
            raise IndexError(f"basis function ({i}, {j}) outside {len(self.neighbourhoods)} neighbourhoods "
                             f"× {self.n_basis} functions")
        psi = fd.Function(self.V, name=f"psi_{i}_{j}")
        with psi.dat.vec_wo as x:
            self._P.getColumnVector(i * self.n_basis + j, x)
        return psi


def check_bases(bases: LocalBases, neighbourhoods: list[Neighbourhood], owned, n_basis: int,
                provider_name: str) -> None:
    """Raise ValueError naming the neighbourhood if a provider returned the wrong thing."""
    if not isinstance(bases, LocalBases):
        raise TypeError(f"basis provider {provider_name!r} returned {type(bases).__name__}, not LocalBases")
    for i in owned:
        if i not in bases.vectors:
            raise ValueError(f"basis provider {provider_name!r} returned no basis for neighbourhood {i}")
        phi = np.asarray(bases.vectors[i])
        expected = (neighbourhoods[i].size, n_basis)
        if phi.shape != expected:
            raise ValueError(
                f"basis provider {provider_name!r} returned an array of shape {phi.shape} for "
                f"neighbourhood {i} ({neighbourhoods[i].kind}); expected {expected} "
                f"(DOFs of the neighbourhood × n_basis)")
        if not np.all(np.isfinite(phi)):
            raise ValueError(f"basis provider {provider_name!r} returned non-finite values for "
                             f"neighbourhood {i}")


def _usable_dofs(layout: SpaceLayout) -> np.ndarray:
    """Per neighbourhood, its fine DOFs where χ_i is nonzero and no Dirichlet condition holds
    (κ-independent: kept in the layout)."""
    dirichlet = layout.geometry.dirichlet
    return np.array([np.count_nonzero(~dirichlet[nbh.dofs] & (nbh.chi != 0)) for nbh in layout.neighbourhoods])


def _check_independent(data: np.ndarray, pattern: _RestrictionPattern, bases: LocalBases, neighbourhoods,
                       geometry: FineGeometry, provider_name: str):
    """Raise :class:`DegenerateSpaceError` if a neighbourhood's ψ_j = χ_i φ_j, on the DOFs
    without Dirichlet condition, are linearly dependent or vanish: the coarse matrix would be
    singular. A fine mesh no finer than the coarse one does this (χ_i then lives on one DOF).

    Tested on the Gram matrix of the ψ_j (n_basis² entries; cheaper than an SVD of the
    neighbourhood's values): its eigenvalues are the squared singular values. The ψ_j are R's
    values ``data``; neighbourhoods with as many free DOFs are checked in one batched product."""
    for blocks, positions in pattern.equal_blocks:
        psi = data[blocks]                                        # (neighbourhoods, n_basis, free DOFs)
        gram = np.linalg.eigvalsh(psi @ psi.transpose(0, 2, 1))
        failed = ~((gram[:, -1] > 0) & (gram[:, 0] > _RANK_TOLERANCE**2 * gram[:, -1]))
        for k in np.flatnonzero(failed):
            _raise_dependent(pattern.owned[positions[k]], bases, neighbourhoods, geometry, provider_name)


def _raise_dependent(i: int, bases: LocalBases, neighbourhoods, geometry: FineGeometry, provider_name: str):
    """The :class:`DegenerateSpaceError` of neighbourhood i, with its rank and free DOFs."""
    nbh = neighbourhoods[i]
    free = ~geometry.dirichlet[nbh.dofs]
    psi = nbh.chi[free, None] * np.asarray(bases.vectors[i])[free]
    gram = np.linalg.eigvalsh(psi.T @ psi)
    rank = int(np.sum(gram > _RANK_TOLERANCE**2 * gram[-1])) if gram[-1] > 0 else 0
    raise DegenerateSpaceError(
        f"the multiscale functions χ_i φ_j of neighbourhood {i} ({nbh.kind}, vertex "
        f"{nbh.vertex.tolist()}) span {rank} dimensions, not n_basis={psi.shape[1]} (basis provider "
        f"{provider_name!r}; {int(free.sum())} of its {nbh.size} fine DOFs are free of Dirichlet "
        f"conditions, and χ_i is nonzero on {int(np.count_nonzero(nbh.chi[free]))} of them): the "
        f"coarse system would be singular. Use a fine mesh several times finer than the coarse "
        f"one, or a smaller n_basis")


def restriction_matrix(bases: LocalBases, layout: SpaceLayout, owned, n_basis: int, V) -> PETSc.Mat:
    """R (N_v·n_basis × fine DOFs) from the local bases of this rank's neighbourhoods; its
    κ-independent sparsity pattern is kept in ``layout``, so later samples only gather values."""
    pattern = _restriction_pattern(layout, owned, n_basis)
    return pattern.matrix(pattern.values(bases), V)


def _restriction_pattern(layout: SpaceLayout, owned, n_basis: int) -> _RestrictionPattern:
    owned = tuple(owned)
    return layout.cached(("restriction pattern", owned, n_basis), lambda: _RestrictionPattern(layout, owned, n_basis))


class _RestrictionPattern:
    """R's κ-independent structure on one rank, kept in the layout: its CSR pattern, where each
    of its values comes from in the local bases, and (on one rank) the pattern of Rᵀ.

    Neighbourhood i contributes n_basis rows with the same columns: its non-Dirichlet DOFs in
    ascending order (PETSc's CSR wants sorted columns). Its values χ_i φ_j are then one gather
    from the local bases laid end to end (``source``) times χ_i (``chi``): a fill of R costs one
    concatenation, one indexing and one product, however many neighbourhoods there are, instead
    of a Python loop over them. On one rank Rᵀ is built the same way (its values are R's in
    another order, ``transposed_order``), cheaper than PETSc's transpose.
    """

    def __init__(self, layout: SpaceLayout, owned: tuple, n_basis: int):
        neighbourhoods, dirichlet = layout.neighbourhoods, layout.geometry.dirichlet
        self.layout, self.owned, self.n_basis = layout, owned, n_basis
        indptr, indices, source, chi, lengths = [0], [], [], [], []
        offset = 0  # of neighbourhood i's basis in the bases laid end to end, (size_i, n_basis) each
        for i in owned:
            nbh = neighbourhoods[i]
            keep = np.flatnonzero(~dirichlet[nbh.dofs])
            r = keep[np.argsort(nbh.dofs[keep])]
            indices.append(np.tile(nbh.dofs[r], n_basis))
            indptr.extend(indptr[-1] + len(r) * np.arange(1, n_basis + 1))
            source.append((offset + r[None, :] * n_basis + np.arange(n_basis)[:, None]).ravel())
            chi.append(np.tile(nbh.chi[r], n_basis))
            lengths.append(len(r))
            offset += nbh.size * n_basis
        self.indptr = np.asarray(indptr, dtype=PETSc.IntType)
        self.indices = np.concatenate(indices).astype(PETSc.IntType) if indices else np.empty(0, PETSc.IntType)
        self.source = np.concatenate(source) if source else np.empty(0, dtype=np.int64)
        self.chi = np.concatenate(chi) if chi else np.empty(0)
        # neighbourhoods with as many free DOFs: their values as (count, n_basis, free DOFs) blocks
        starts = np.asarray(self.indptr[:-1:n_basis], dtype=np.int64) if owned else np.empty(0, np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        self.equal_blocks = []
        for length in np.unique(lengths):
            positions = np.flatnonzero(lengths == length)
            blocks = starts[positions, None, None] + np.arange(n_basis * length).reshape(1, n_basis, length)
            self.equal_blocks.append((blocks, positions))
        self._transposed = None

    def values(self, bases: LocalBases) -> np.ndarray:
        """R's CSR values χ_i φ_j from the local bases (checked by :func:`check_bases`)."""
        if not self.owned:
            return np.empty(0)
        laid = np.concatenate([np.asarray(bases.vectors[i], dtype=float).ravel() for i in self.owned])
        return laid[self.source] * self.chi

    def matrix(self, data: np.ndarray, V) -> PETSc.Mat:
        """R with CSR values ``data`` (from :meth:`values`)."""
        sizes = ((len(self.owned) * self.n_basis, len(self.layout.neighbourhoods) * self.n_basis),
                 (V.dof_dset.size, V.dim()))
        return _aij(sizes, self.indptr, self.indices, data, self.layout.comm)

    def transposed_matrix(self, data: np.ndarray, V) -> PETSc.Mat:
        """Rᵀ (fine DOFs × N_v·n_basis) with R's CSR values ``data``, on one rank."""
        if self.layout.comm.size != 1:
            raise ValueError("Rᵀ from R's values needs all of R on one rank")
        if self._transposed is None:
            import scipy.sparse as sp

            rows = len(self.owned) * self.n_basis
            order = sp.csr_matrix((np.arange(len(self.indices)) + 1, self.indices, self.indptr),
                                  shape=(rows, V.dim())).tocsc()  # +1: no entry is an explicit zero
            order.sort_indices()
            self._transposed = (order.indptr.astype(PETSc.IntType), order.indices.astype(PETSc.IntType),
                                order.data - 1)
        indptr, indices, order = self._transposed
        sizes = ((V.dof_dset.size, V.dim()), (len(self.owned) * self.n_basis,) * 2)
        return _aij(sizes, indptr, indices, data[order], self.layout.comm)


def _aij(sizes, indptr, indices, data, comm) -> PETSc.Mat:
    """An assembled AIJ matrix with this CSR structure. On one rank PETSc uses the arrays in
    place (no copy, no insertion row by row: the pattern is kept in the layout and only read);
    over several ranks it copies them into its distributed format."""
    if comm.size == 1:
        return PETSc.Mat().createAIJWithArrays(sizes, csr=(indptr, indices, data), comm=comm)
    matrix = PETSc.Mat().createAIJ(sizes, csr=(indptr, indices, data), comm=comm)
    matrix.assemble()
    return matrix
