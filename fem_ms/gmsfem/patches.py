"""What a basis provider is handed: the neighbourhoods of one κ, with their local matrices on
demand and κ on each neighbourhood's canonically oriented patch grid."""

from __future__ import annotations

import functools
import time

import numpy as np
import scipy.sparse as sp

from .layout import SpaceLayout
from .spectral import ElementMatrices, local_matrices

__all__ = ["PatchSet", "grid_matrices"]


@functools.cache
def _q1_elements(dim: int):
    """Q1 stiffness and mass of the unit cell [0, 1]^dim, vertices in lexicographic (C) order."""
    k1 = np.array([[1.0, -1.0], [-1.0, 1.0]])
    m1 = np.array([[2.0, 1.0], [1.0, 2.0]]) / 6.0
    stiffness = sum(functools.reduce(np.kron, [k1 if a == b else m1 for b in range(dim)]) for a in range(dim))
    return stiffness, functools.reduce(np.kron, [m1] * dim)


_PATTERNS: dict = {}


def _q1_pattern(shape: tuple[int, ...], order: np.ndarray | None):
    """The CSR structure (indptr, indices) of Q1 matrices on a grid of ``shape`` cells, with
    vertices numbered ``order`` (grid vertex ``order[k]`` is row k; C order if None), and the CSR
    slot of every cell's element matrix entries (cell-major): the matrices' data are then one
    weighted ``bincount``. Kept for the few patch shapes and orientations of a hierarchy."""
    key = (shape, None if order is None else order.tobytes())
    if key not in _PATTERNS:
        dim = len(shape)
        vertices = tuple(n + 1 for n in shape)
        n = int(np.prod(vertices))
        corners = np.array(np.unravel_index(np.arange(2**dim), (2,) * dim)).T          # (2^d, d)
        cells = np.array(np.unravel_index(np.arange(int(np.prod(shape))), shape)).T     # (cells, d)
        nodes = np.ravel_multi_index(tuple((cells[:, None, :] + corners[None]).transpose(2, 0, 1)), vertices)
        if order is not None:
            position = np.empty(n, dtype=np.int64)
            position[order] = np.arange(n)
            nodes = position[nodes]
        k = 2**dim
        rows, cols = np.repeat(nodes, k, axis=1).ravel(), np.tile(nodes, (1, k)).ravel()
        keys, slots = np.unique(rows * n + cols, return_inverse=True)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // n, minlength=n))])
        if len(_PATTERNS) > 64:
            _PATTERNS.clear()
        _PATTERNS[key] = (indptr, keys % n, slots, n)
    return _PATTERNS[key]


def grid_matrices(kappa: np.ndarray, cells_per_unit: int, order: np.ndarray | None = None):
    """(A, S): the κ-weighted Q1 stiffness and mass on a grid of cubic cells of side
    1/``cells_per_unit`` with cellwise κ (shape = cells per axis), as scipy CSR matrices whose
    rows are the grid vertices ``order`` (C order if None). Written here because Firedrake
    assembles on whole meshes, and a neighbourhood's matrices from its own cells cost a
    fraction of that (tested equal to Firedrake's)."""
    dim = kappa.ndim
    h = 1.0 / cells_per_unit
    stiffness, mass = _q1_elements(dim)
    indptr, indices, slots, n = _q1_pattern(kappa.shape, order)
    weights = kappa.reshape(-1, 1)

    def csr(element, scale):
        data = np.bincount(slots, weights=(weights * element.ravel()).ravel(), minlength=len(indices))
        return sp.csr_matrix((scale * data, indices, indptr), shape=(n, n))

    return csr(stiffness, h ** (dim - 2)), csr(mass, h ** dim)


class PatchSet:
    """The neighbourhoods a provider makes bases for, with what a provider may need of them.

    Parameters
    ----------
    layout : SpaceLayout
        The κ-independent layout (neighbourhoods, geometry, cached index arrays).
    owned : list of int
        The neighbourhoods this rank must provide bases for.
    kappa : firedrake.Function
        The permeability on the fine mesh.
    V : firedrake.FunctionSpace
        The fine space.

    Attributes
    ----------
    neighbourhoods : list of Neighbourhood
        All neighbourhoods (every rank knows all of them).
    owned : list of int
    kappa : firedrake.Function
    geometry : FineGeometry
    assembly_time : float
        Wall seconds spent assembling element and local matrices so far.
    """

    def __init__(self, layout: SpaceLayout, owned, kappa, V):
        self.layout = layout
        self.neighbourhoods = layout.neighbourhoods
        self.geometry = layout.geometry
        self.owned = list(owned)
        self.kappa = kappa
        self.V = V
        self._elements = None
        self._kappa_grid = None
        self.assembly_time = 0.0

    @property
    def comm(self):
        """The fine mesh's communicator."""
        return self.layout.comm

    @property
    def elements(self) -> ElementMatrices:
        """κ-weighted element matrices of all fine cells (assembled on first use)."""
        if self._elements is None:
            t0 = time.perf_counter()
            self._elements = ElementMatrices.assemble(self.V, self.kappa, self.geometry)
            self.assembly_time += time.perf_counter() - t0
        return self._elements

    def local_matrices(self, i: int):
        """(A_i, S_i) of neighbourhood i as scipy CSR matrices: the κ-weighted Neumann stiffness
        and mass on ω_i, in :attr:`Neighbourhood.dofs` order.

        On a structured Q1 hierarchy they are built from κ on the patch's cell grid
        (:func:`grid_matrices`, cost proportional to the patch); otherwise they are scattered
        from the element matrices of all fine cells, assembled by Firedrake on first use.
        """
        if self._grid_path:
            t0 = time.perf_counter()
            kappa = self.kappa_patch(i)
            order = self.layout.cached(("grid to DOF order", i), lambda: np.ravel_multi_index(
                self.grid_positions(i), tuple(n + 1 for n in kappa.shape)))
            out = grid_matrices(kappa, self.layout.cells_per_side[0], order)
            self.assembly_time += time.perf_counter() - t0
            return out
        elements = self.elements
        t0 = time.perf_counter()
        out = local_matrices(self.neighbourhoods[i], self.geometry, elements)
        self.assembly_time += time.perf_counter() - t0
        return out

    @property
    def _grid_path(self) -> bool:
        """A structured Q1 hierarchy with cubic cells: local matrices from the patch grids."""
        cells = self.layout.cells_per_side
        return (cells is not None and len(set(cells)) == 1 and self.V.ufl_element().degree() == 1
                and self.V.mesh().ufl_cell().cellname in ("quadrilateral", "hexahedron"))

    # --- structured patches, for learned providers ------------------------------------------

    def _require_structured(self):
        if self.layout.cells_per_side is None:
            raise ValueError("patch grids need a structured hierarchy (structured_hierarchy)")

    @property
    def kappa_grid(self) -> np.ndarray:
        """κ on the fine cell grid of a structured unit square/cube (gathered on every rank)."""
        if self._kappa_grid is None:
            from ..coefficients import cell_grid_indices

            self._require_structured()
            mesh = self.kappa.function_space().mesh()
            cells = self.layout.cells_per_side
            indices = self.layout.cached("cell grid", lambda: tuple(
                tuple(ids) for ids in mesh.comm.allgather(np.stack(cell_grid_indices(mesh, cells)))))
            grid = np.zeros(cells)
            for ids, vals in zip(indices, mesh.comm.allgather(np.asarray(self.kappa.dat.data_ro))):
                grid[ids] = vals
            self._kappa_grid = grid
        return self._kappa_grid

    def patch_box(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Fine-cell index range [lo, hi) per axis covered by ω_i."""
        self._require_structured()
        n = np.array(self.layout.cells_per_side)
        m = n // np.array(self.layout.coarse_cells_per_side)
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

    def kappa_patches(self, indices) -> np.ndarray:
        """κ on the canonical patch grids of the neighbourhoods ``indices`` (all of one shape, as
        those of one kind are), stacked: ``(len(indices), *cells)``, equal to stacking
        :meth:`kappa_patch`. One indexing of :attr:`kappa_grid` with a cached κ-independent map
        instead of a slice, flip and transpose per neighbourhood."""
        indices = tuple(int(i) for i in indices)
        cells = self.layout.cached(("patch cells", indices), lambda: self._patch_cells(indices))
        return self.kappa_grid.ravel()[cells]

    def _patch_cells(self, indices: tuple[int, ...]) -> np.ndarray:
        numbering = np.arange(self.kappa_grid.size).reshape(self.kappa_grid.shape)
        patches = [self._orient(i, numbering[tuple(slice(a, b) for a, b in zip(*self.patch_box(i)))])
                   for i in indices]
        if len({p.shape for p in patches}) > 1:
            raise ValueError(f"neighbourhoods {list(indices)} have patch grids of different shapes "
                             f"{sorted({p.shape for p in patches})}; stack those of one kind")
        return np.stack(patches) if patches else np.empty((0,), dtype=np.int64)

    def grid_to_dofs(self, indices) -> np.ndarray:
        """``(len(indices), size)``: for each neighbourhood of ``indices`` (all of one kind), the
        position of each of its DOFs (in DOF order) in its canonical vertex grid flattened in C
        order; values predicted on the grids of these patches, ``G`` of shape
        ``(len(indices), n, *vertices)``, map to the DOFs in one gather,
        ``np.take_along_axis(G.reshape(len(indices), n, -1), grid_to_dofs(indices)[:, None], 2)``
        (the flat form of :meth:`grid_positions`)."""
        indices = tuple(int(i) for i in indices)
        return self.layout.cached(("grid to DOFs", indices), lambda: self._grid_to_dofs(indices))

    def _grid_to_dofs(self, indices: tuple[int, ...]) -> np.ndarray:
        flat = []
        for i in indices:
            lo, hi = self.patch_box(i)
            perm, _ = self.canonical_transform(i)
            vertices = tuple(int(n) + 1 for n in (hi - lo)[list(perm)])  # of the canonical grid
            flat.append(np.ravel_multi_index(self.grid_positions(i), vertices))
        if len({len(f) for f in flat}) > 1:
            raise ValueError(f"neighbourhoods {list(indices)} have different numbers of DOFs; map those of one kind")
        return np.stack(flat) if flat else np.empty((0, 0), dtype=np.int64)

    def grid_positions(self, i: int) -> tuple[np.ndarray, ...]:
        """Canonical vertex-grid index (per axis) of each DOF of ω_i, in DOF order.

        A provider that predicts values ``G`` on the canonical vertex grid of ω_i (shape
        ``kappa_patch(i).shape + 1``) maps them to ω_i's DOFs as ``G[grid_positions(i)]``.
        """
        return self.layout.cached(("grid positions", i), lambda: self._grid_positions(i))

    def _grid_positions(self, i: int) -> tuple[np.ndarray, ...]:
        nbh = self.neighbourhoods[i]
        lo, hi = self.patch_box(i)
        n = np.array(self.layout.cells_per_side)
        idx = np.rint(self.geometry.dof_coords[nbh.dofs] * n).astype(int) - lo
        extent = hi - lo
        perm, flips = self.canonical_transform(i)
        idx = np.where(np.array(flips), extent - idx, idx)
        return tuple(idx[:, a] for a in perm)
