"""Coarse neighbourhoods ω_i: the coarse cells around each coarse vertex, their fine cells and DOFs.

Every rank holds the geometry of the whole fine mesh in a global numbering (cell → global DOFs,
DOF coordinates, Dirichlet DOFs), gathered once from the distributed Firedrake mesh: the local
spectral problems need whole neighbourhoods, and neighbourhoods cut across the mesh partition.
The DOFs of each ω_i are ordered by their coordinates, so the local problems — and their
eigenvectors — are the same on any number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import firedrake as fd

from ..meshes import NestedMeshes

__all__ = ["FineGeometry", "Neighbourhood", "build_neighbourhoods", "KINDS"]

# Neighbourhood kinds by the number of axes on which the vertex lies on the box boundary.
KINDS = {2: ("full", "half", "corner"), 3: ("full", "half", "quarter", "corner")}


@dataclass
class FineGeometry:
    """The fine mesh in a global numbering, replicated on every rank.

    Attributes
    ----------
    cell_dofs : ndarray (cells, k)
        Global (PETSc) DOF indices of every fine cell, in the element's local order.
    parents : ndarray (cells,)
        Coarse cell of every fine cell.
    dof_coords : ndarray (dofs, dim)
        Coordinates of every global DOF.
    dirichlet : ndarray of bool (dofs,)
        DOFs constrained by Dirichlet conditions.
    owned_cells : slice
        The rows of ``cell_dofs`` that this rank owns (in its Firedrake cell order).
    """

    cell_dofs: np.ndarray
    parents: np.ndarray
    dof_coords: np.ndarray
    dirichlet: np.ndarray
    owned_cells: slice

    @classmethod
    def gather(cls, pair: NestedMeshes, V, bcs) -> FineGeometry:
        """Gather the geometry of ``V``'s mesh from all ranks."""
        comm = V.mesh().comm
        lgmap = V.dof_dset.lgmap
        n_owned_cells = len(pair.fine_to_coarse)
        dg0 = fd.FunctionSpace(V.mesh(), "DG", 0).cell_node_map().values[:n_owned_cells, 0]
        # rows in DG0 order, so that parents (DG0 numbering) line up
        local_cells = np.empty((n_owned_cells, V.cell_node_map().arity), dtype=np.int64)
        local_cells[dg0] = lgmap.apply(V.cell_node_map().values[:n_owned_cells].ravel()).reshape(
            n_owned_cells, -1)
        X = fd.Function(fd.VectorFunctionSpace(V.mesh(), V.ufl_element())).interpolate(
            fd.SpatialCoordinate(V.mesh()))
        n_owned_dofs = V.dof_dset.size
        owned_global = lgmap.apply(np.arange(n_owned_dofs, dtype=np.int32))
        coords_local = X.dat.data_ro[:n_owned_dofs]
        bc_local = np.unique(np.concatenate([bc.nodes for bc in bcs])) if bcs else np.empty(0, int)
        bc_global = lgmap.apply(bc_local.astype(np.int32)) if len(bc_local) else np.empty(0, np.int64)

        cells = comm.allgather(local_cells)
        parents = np.concatenate(comm.allgather(pair.fine_to_coarse))
        counts = [len(c) for c in cells]
        start = sum(counts[: comm.rank])
        n_dofs = V.dim()
        dof_coords = np.empty((n_dofs, V.mesh().geometric_dimension))
        for idx, xy in zip(comm.allgather(owned_global), comm.allgather(coords_local)):
            dof_coords[idx] = xy
        dirichlet = np.zeros(n_dofs, dtype=bool)
        dirichlet[np.concatenate(comm.allgather(bc_global)).astype(np.int64)] = True
        return cls(np.concatenate(cells), parents, dof_coords, dirichlet,
                   slice(start, start + n_owned_cells))


@dataclass
class Neighbourhood:
    """One coarse neighbourhood ω_i.

    Attributes
    ----------
    index : int
        The coarse vertex x_i (coarse P1/Q1 DOF number).
    vertex : ndarray (dim,)
        Its coordinates.
    kind : str
        ``full``, ``half`` (edge in 2D, face in 3D), ``quarter`` (3D edge) or ``corner``.
    cells : ndarray
        Fine cells of ω_i (rows of :attr:`FineGeometry.cell_dofs`).
    dofs : ndarray
        Global fine DOFs of ω_i, ordered lexicographically by coordinates.
    chi : ndarray
        The partition-of-unity function χ_i at :attr:`dofs`.
    boundary_axes : tuple of (axis, side)
        Axes on which the vertex lies on the domain boundary (side 0: low, 1: high).
    """

    index: int
    vertex: np.ndarray
    kind: str
    cells: np.ndarray
    dofs: np.ndarray
    chi: np.ndarray
    boundary_axes: tuple

    @property
    def size(self) -> int:
        """Number of fine DOFs in ω_i."""
        return len(self.dofs)

    def local_index(self, global_dofs: np.ndarray) -> np.ndarray:
        """Positions in :attr:`dofs` of the given global DOFs (all must belong to ω_i)."""
        order = self._sorter
        pos = np.searchsorted(self.dofs, global_dofs, sorter=order)
        return order[pos]

    @property
    def _sorter(self) -> np.ndarray:
        if not hasattr(self, "_sorter_cache"):
            self._sorter_cache = np.argsort(self.dofs, kind="stable")
        return self._sorter_cache


def _coarse_basis_at(coarse, Vc, Xc: np.ndarray, points: np.ndarray):
    """Coarse DOFs and values of the coarse P1/Q1 basis functions at ``points``.

    Returns (nodes, values), both (points, vertices per cell): the coarse P1/Q1 DOFs of the
    coarse cell containing each point and their basis functions' values there. Computed from
    the vertex coordinates ``Xc`` (indexed by coarse DOF): barycentric coordinates on simplices,
    products of 1D hats on axis-aligned boxes, so no reference-element ordering is assumed.
    """
    cells, _, _ = coarse.locate_cells_ref_coords_and_dists(points)
    if np.any(cells < 0):
        bad = points[np.flatnonzero(cells < 0)[0]]
        raise ValueError(f"fine DOF at {bad} lies outside the coarse mesh")
    nodes = Vc.cell_node_map().values[cells]  # (points, vertices)
    corners = Xc[nodes]  # (points, vertices, dim)
    dim = points.shape[1]
    if nodes.shape[1] == dim + 1:  # simplex
        J = np.swapaxes(corners[:, 1:] - corners[:, :1], 1, 2)
        lam = np.linalg.solve(J, (points - corners[:, 0])[..., None])[..., 0]
        values = np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)
    elif nodes.shape[1] == 2**dim:  # box
        lo, hi = corners.min(axis=1), corners.max(axis=1)
        if not np.all(np.isclose(corners, lo[:, None]) | np.isclose(corners, hi[:, None])):
            raise NotImplementedError("partition of unity on non-box quadrilaterals/hexahedra")
        h = hi - lo
        values = np.prod(np.clip(1.0 - np.abs(points[:, None, :] - corners) / h[:, None, :], 0.0, 1.0), axis=2)
    else:
        raise NotImplementedError(f"partition of unity for cells with {nodes.shape[1]} vertices")
    return nodes, values


def build_neighbourhoods(pair: NestedMeshes, geometry: FineGeometry) -> list[Neighbourhood]:
    """All coarse neighbourhoods of ``pair`` with their fine DOFs and partition of unity.

    The coarse vertices that carry neighbourhoods are all coarse P1/Q1 DOFs (Dirichlet ones
    included: their χ_i φ_j vanish on the boundary through the DOF constraints only).
    """
    coarse = pair.coarse
    Vc = fd.FunctionSpace(coarse, "CG", 1)
    coarse_cell_vertices = Vc.cell_node_map().values
    V0c = fd.FunctionSpace(coarse, "DG", 0)
    # coarse cells in DG0 numbering (as geometry.parents) → coarse vertices
    dg0 = V0c.cell_node_map().values[:, 0]
    vertices_of = np.empty_like(coarse_cell_vertices)
    vertices_of[dg0] = coarse_cell_vertices
    Xc = fd.Function(fd.VectorFunctionSpace(coarse, Vc.ufl_element())).interpolate(
        fd.SpatialCoordinate(coarse)).dat.data_ro
    lo, hi = Xc.min(axis=0), Xc.max(axis=0)
    tol = 1e-10 * (hi - lo).max()
    dim = coarse.topological_dimension

    # χ for every fine DOF, from the coarse cell that contains it
    nodes, values = _coarse_basis_at(coarse, Vc, Xc, geometry.dof_coords)
    n_v = Vc.dim()
    # fine cells around each coarse vertex: via the coarse cells touching the vertex
    cells_of_vertex = [[] for _ in range(n_v)]
    for c, verts in enumerate(vertices_of):
        for v in verts:
            cells_of_vertex[v].append(c)
    fine_by_coarse = np.argsort(geometry.parents, kind="stable")
    bounds = np.searchsorted(geometry.parents[fine_by_coarse], np.arange(len(vertices_of) + 1))

    out = []
    for i in range(n_v):
        fine_cells = np.sort(np.concatenate([fine_by_coarse[bounds[c]:bounds[c + 1]]
                                             for c in cells_of_vertex[i]]))
        dofs = np.unique(geometry.cell_dofs[fine_cells])
        order = np.lexsort(geometry.dof_coords[dofs].T[::-1])
        dofs = dofs[order]
        hit = nodes[dofs] == i
        chi = np.where(hit, values[dofs], 0.0).sum(axis=1)
        on_low = np.abs(Xc[i] - lo) < tol
        on_high = np.abs(Xc[i] - hi) < tol
        boundary_axes = tuple((d, int(on_high[d])) for d in range(dim) if on_low[d] or on_high[d])
        kind = KINDS.get(dim, ("full",) * 4)[len(boundary_axes)] if dim in KINDS else "full"
        out.append(Neighbourhood(i, Xc[i].copy(), kind, fine_cells, dofs, chi, boundary_axes))
    return out
