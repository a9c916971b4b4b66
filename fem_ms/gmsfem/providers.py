"""The seam between GMsFEM and whatever makes its local bases: ``BasisProvider``.

A provider gets a :class:`PatchSet` (the neighbourhoods, κ, the local matrices on demand, and κ
on each neighbourhood's canonically oriented patch grid) and returns :class:`LocalBases`. The
SLEPc eigen-solver (:class:`SpectralBasisProvider`, name ``"slepc"``) and learned providers
(``fem_ms_torch``) return the same thing, and everything downstream is shared.

Providers are found by name in the ``fem_ms.basis_providers`` entry-point group.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from .neighbourhoods import FineGeometry
from .spectral import ElementMatrices, SpectralSolver, local_matrices

__all__ = ["BasisProvider", "PatchSet", "LocalBases", "SpectralBasisProvider", "get_provider",
           "available_providers", "ENTRY_POINT_GROUP"]

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "fem_ms.basis_providers"


@dataclass
class LocalBases:
    """Local bases of the neighbourhoods a rank handles.

    Attributes
    ----------
    vectors : dict int → ndarray (size_i, n_basis)
        For neighbourhood i, its basis vectors φ_j on ω_i's DOFs (in :attr:`Neighbourhood.dofs`
        order), one per column.
    eigenvalues : dict int → ndarray (n_basis,), optional
        Where the provider knows them.
    timings : dict
        Wall seconds by phase.
    """

    vectors: dict
    eigenvalues: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


class PatchSet:
    """The neighbourhoods handed to a provider, with what a provider may need of them.

    Attributes
    ----------
    neighbourhoods : list of Neighbourhood
        All neighbourhoods (every rank knows all of them).
    mine : list of int
        The neighbourhoods this rank must provide bases for.
    kappa : firedrake.Function
        The permeability on the fine mesh.
    """

    def __init__(self, neighbourhoods, mine, kappa, geometry: FineGeometry, pair, V, cache: dict | None = None):
        self.neighbourhoods = neighbourhoods
        self.mine = list(mine)
        self.kappa = kappa
        self.geometry = geometry
        self.pair = pair
        self.V = V
        # κ-independent index arrays (cell grid numbering, patch layouts); GMsFEM passes one
        # dict per mesh pair, so that they are computed for the first sample only
        self._cache = {} if cache is None else cache
        self._elements = None
        self._kappa_grid = None
        self.assembly_time = 0.0

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def elements(self) -> ElementMatrices:
        """κ-weighted element matrices of all fine cells (assembled on first use)."""
        if self._elements is None:
            t0 = time.perf_counter()
            self._elements = ElementMatrices.assemble(self.V, self.kappa, self.geometry)
            self.assembly_time += time.perf_counter() - t0
        return self._elements

    def local_matrices(self, i: int):
        """(A_i, S_i) of neighbourhood i as scipy CSR matrices."""
        elements = self.elements
        t0 = time.perf_counter()
        out = local_matrices(self.neighbourhoods[i], self.geometry, elements)
        self.assembly_time += time.perf_counter() - t0
        return out

    # --- structured patches, for learned providers ------------------------------------------

    def _require_structured(self):
        if self.pair.cells_per_side is None:
            raise ValueError("patch grids need a structured hierarchy (structured_hierarchy)")

    @property
    def kappa_grid(self) -> np.ndarray:
        """κ on the fine cell grid of a structured unit square/cube (gathered on every rank)."""
        if self._kappa_grid is None:
            from ..coefficients import cell_grid_indices

            self._require_structured()
            mesh = self.kappa.function_space().mesh()
            cells = self.pair.cells_per_side
            indices = self._cached(("cell grid", id(mesh)), lambda: tuple(
                tuple(ids) for ids in mesh.comm.allgather(np.stack(cell_grid_indices(mesh, cells)))))
            grid = np.zeros(cells)
            for ids, vals in zip(indices, mesh.comm.allgather(np.asarray(self.kappa.dat.data_ro))):
                grid[ids] = vals
            self._kappa_grid = grid
        return self._kappa_grid

    def patch_box(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Fine-cell index range [lo, hi) per axis covered by ω_i."""
        self._require_structured()
        n = np.array(self.pair.cells_per_side)
        m = n // np.array(self.pair.coarse_cells_per_side)
        centre = np.rint(self.neighbourhoods[i].vertex * n).astype(int)
        return np.maximum(centre - m, 0), np.minimum(centre + m, n)

    def canonical_transform(self, i: int) -> tuple[tuple[int, ...], tuple[bool, ...]]:
        """(axis permutation, flips) that put ω_i in its kind's canonical orientation.

        Canonical: the coarse vertex sits at the low end of every boundary axis (flip the axes
        where it sits at the high end), and boundary axes come after the interior ones. All
        patches of one kind then have one grid shape, so their data stack into one array.
        """
        nbh = self.neighbourhoods[i]
        dim = len(nbh.vertex)
        flips = [False] * dim
        for axis, side in nbh.boundary_axes:
            flips[axis] = bool(side)
        boundary = {a for a, _ in nbh.boundary_axes}
        perm = tuple([a for a in range(dim) if a not in boundary] + sorted(boundary))
        return perm, tuple(flips)

    def _orient(self, i: int, array: np.ndarray) -> np.ndarray:
        perm, flips = self.canonical_transform(i)
        for axis, flip in enumerate(flips):
            if flip:
                array = np.flip(array, axis)
        return np.ascontiguousarray(np.transpose(array, perm))

    def kappa_patch(self, i: int) -> np.ndarray:
        """κ on ω_i's fine cell grid, in canonical orientation."""
        lo, hi = self.patch_box(i)
        return self._orient(i, self.kappa_grid[tuple(slice(a, b) for a, b in zip(lo, hi))])

    def grid_positions(self, i: int) -> tuple[np.ndarray, ...]:
        """Canonical vertex-grid index (per axis) of each DOF of ω_i, in DOF order.

        A provider that predicts values ``G`` on the canonical vertex grid of ω_i (shape
        ``kappa_patch(i).shape + 1``) maps them to ω_i's DOFs as ``G[grid_positions(i)]``.
        """
        return self._cached(("grid positions", i), lambda: self._grid_positions(i))

    def _grid_positions(self, i: int) -> tuple[np.ndarray, ...]:
        nbh = self.neighbourhoods[i]
        lo, hi = self.patch_box(i)
        n = np.array(self.pair.cells_per_side)
        idx = np.rint(self.geometry.dof_coords[nbh.dofs] * n).astype(int) - lo
        extent = hi - lo
        perm, flips = self.canonical_transform(i)
        idx = np.where(np.array(flips), extent - idx, idx)
        return tuple(idx[:, a] for a in perm)


@runtime_checkable
class BasisProvider(Protocol):
    """Makes local bases for GMsFEM.

    ``local_bases(patches, n_basis)`` returns a :class:`LocalBases` with, for every
    neighbourhood in ``patches.mine``, an array (size_i, n_basis) of linearly independent
    vectors on ω_i's DOFs (their span is what matters: GMsFEM multiplies them by χ_i).
    """

    name: str

    def local_bases(self, patches: PatchSet, n_basis: int) -> LocalBases: ...


class SpectralBasisProvider:
    """GMsFEM's spectral bases: the n smallest eigenpairs of A_i φ = λ S_i φ, by SLEPc.

    Eigenvectors are S_i-orthonormal, and signed so that their largest entry is positive
    (deterministic across runs and partitions).

    Parameters
    ----------
    eps_options : dict, optional
        SLEPc/PETSc options overriding :data:`fem_ms.gmsfem.spectral.DEFAULT_EPS_OPTIONS`,
        e.g. ``{"st_pc_factor_mat_solver_type": "mumps"}``.
    options_prefix : str
        Prefix for command-line overrides (default ``gmsfem_``).
    progress : bool
        Show a progress bar over the neighbourhoods.
    """

    name = "slepc"

    def __init__(self, eps_options: dict | None = None, options_prefix: str = "gmsfem_",
                 progress: bool = True):
        self.solver = SpectralSolver(eps_options, options_prefix)
        self.progress = progress

    def local_bases(self, patches: PatchSet, n_basis: int) -> LocalBases:
        vectors, values = {}, {}
        patches.elements  # assemble once, before the loop
        bar = tqdm(patches.mine, desc="GMsFEM local eigenproblems (SLEPc)", unit="nbh", leave=False,
                   disable=not self.progress or patches.V.mesh().comm.rank != 0)
        for i in bar:
            A, S = patches.local_matrices(i)
            lam, phi = self.solver.solve(A, S, n_basis, name=f"neighbourhood {i}")
            signs = np.sign(phi[np.argmax(np.abs(phi), axis=0), np.arange(n_basis)])
            vectors[i] = phi * signs
            values[i] = lam
        return LocalBases(vectors, values, dict(self.solver.timings))


def available_providers() -> list[str]:
    """Names registered in the ``fem_ms.basis_providers`` entry-point group."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def get_provider(basis, **kwargs) -> BasisProvider:
    """A provider by name (entry points) or the provider object itself."""
    if not isinstance(basis, str):
        if not isinstance(basis, BasisProvider):
            raise TypeError(f"basis must be a provider name or a BasisProvider, got {basis!r}")
        return basis
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == basis]
    if not matches:
        raise ValueError(f"unknown basis provider {basis!r}; available: {available_providers()} "
                         f"(providers register in the {ENTRY_POINT_GROUP!r} entry-point group)")
    return matches[0].load()(**kwargs)
