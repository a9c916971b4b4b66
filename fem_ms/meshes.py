"""Nested coarse/fine meshes of the unit square and cube, and meshes from Gmsh ``.geo`` files.

A :class:`NestedMeshes` pair is what every multiscale method here stands on: a small coarse mesh
(replicated on every MPI rank, on ``COMM_SELF``) and a fine mesh (distributed on ``comm``) such
that every fine cell lies in exactly one coarse cell, with that fine-cell → coarse-cell map.

Firedrake's ``MeshHierarchy`` refines by factors of two only, while multiscale benchmarks use
ratios such as 100/5 = 20, so the structured pair is built directly and the parent map is found
by point location; the same check rejects any pair that does not nest.
"""

from __future__ import annotations

import logging
import numbers
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import firedrake as fd
from pyop2.mpi import COMM_SELF, COMM_WORLD

from .checks import check_int

__all__ = [
    "NestedMeshes",
    "structured_hierarchy",
    "nest",
    "mesh_from_geo",
    "gmsh_hierarchy",
    "cell_vertex_coordinates",
    "cell_centroids",
]

logger = logging.getLogger(__name__)

# Boundary markers of Firedrake's UnitSquareMesh / UnitCubeMesh (and of fem_ms/geometries/*.geo):
# 1: x=0, 2: x=1, 3: y=0, 4: y=1, (5: z=0, 6: z=1).
BOTTOM, TOP = 3, 4

# At exit, PetscFinalize cleans up garbage on PETSC_COMM_WORLD collectively, but only on the ranks
# where PETSc's inner communicator still exists. Objects left to the garbage collector are freed
# at different moments on different ranks; when the last one went on some ranks only, those
# finalised while the others waited in the cleanup's reduction, and a parallel run hung at exit.
# A vector on PETSC_COMM_WORLD that lives until exit keeps the inner communicator on every rank.
_WORLD_ANCHOR = (fd.PETSc.Vec().createMPI(COMM_WORLD.size, comm=fd.PETSc.COMM_WORLD)
                 if COMM_WORLD.size > 1 else None)


@dataclass(frozen=True)
class NestedMeshes:
    """A coarse mesh and a fine mesh nested in it.

    Attributes
    ----------
    coarse : firedrake.MeshGeometry
        The coarse mesh, on ``COMM_SELF`` (every rank holds all of it: it is small).
    fine : firedrake.MeshGeometry
        The fine mesh, distributed over ``fine.comm``.
    fine_to_coarse : numpy.ndarray
        For every fine cell of this rank (in the DG0 numbering of the fine mesh), the coarse
        cell (DG0 numbering of the coarse mesh) that contains it.
    cells_per_side : tuple of int or None
        Fine cells per side for structured meshes of the unit square/cube, else ``None``.
    coarse_cells_per_side : tuple of int or None
        Coarse cells per side for structured meshes, else ``None``.
    """

    coarse: fd.MeshGeometry
    fine: fd.MeshGeometry
    fine_to_coarse: np.ndarray
    cells_per_side: tuple[int, ...] | None = None
    coarse_cells_per_side: tuple[int, ...] | None = None

    @property
    def dim(self) -> int:
        """Topological dimension."""
        return self.fine.topological_dimension

    @property
    def quadrilateral(self) -> bool:
        """True for quadrilateral/hexahedral cells."""
        return self.fine.ufl_cell().cellname in ("quadrilateral", "hexahedron")


def _unit_mesh(n: int, dim: int, quadrilateral: bool, comm, diagonal: str | None):
    if dim == 2:
        kwargs = {} if quadrilateral or diagonal is None else {"diagonal": diagonal}
        return fd.UnitSquareMesh(n, n, quadrilateral=quadrilateral, comm=comm, **kwargs)
    if dim == 3:
        return fd.UnitCubeMesh(n, n, n, hexahedral=quadrilateral, comm=comm)
    raise ValueError(f"dim must be 2 or 3, got {dim!r}")


def structured_hierarchy(
    coarse_cells: int,
    fine_cells: int,
    dim: int = 2,
    quadrilateral: bool = True,
    comm=COMM_WORLD,
    diagonal: str = "left",
) -> NestedMeshes:
    """Structured coarse and fine meshes of the unit square (``dim=2``) or cube (``dim=3``).

    Parameters
    ----------
    coarse_cells : int
        Coarse cells per side (e.g. 5 for the 5×5 coarse grid with 36 vertices).
    fine_cells : int
        Fine cells per side; a multiple of ``coarse_cells`` so that the meshes nest.
    dim : {2, 3}
        Space dimension.
    quadrilateral : bool
        Quadrilaterals/hexahedra (Q1) if True, triangles/tetrahedra (P1) if False.
    comm : mpi4py.MPI.Comm
        Communicator of the fine mesh. The coarse mesh is always on ``COMM_SELF``.
    diagonal : str
        Triangle diagonal of 2D simplex meshes (the same on both meshes, so that they nest).

    Returns
    -------
    NestedMeshes
    """
    coarse_cells, fine_cells = check_int("coarse_cells", coarse_cells), check_int("fine_cells", fine_cells)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    from firedrake.petsc import PETSc

    largest = np.iinfo(PETSc.IntType).max
    if (fine_cells + 1) ** dim * (1 if quadrilateral else 6) > largest:
        raise ValueError(f"fine_cells={fine_cells} in {dim}D gives more mesh entities than this PETSc build's "
                         f"{np.dtype(PETSc.IntType).itemsize * 8}-bit indices can number")
    if fine_cells % coarse_cells:
        raise ValueError(
            f"fine_cells={fine_cells} is not a multiple of coarse_cells={coarse_cells}: "
            "the fine mesh would not nest in the coarse mesh"
        )
    coarse = _unit_mesh(coarse_cells, dim, quadrilateral, COMM_SELF, diagonal)
    fine = _unit_mesh(fine_cells, dim, quadrilateral, comm, diagonal)
    pair = nest(coarse, fine)
    return NestedMeshes(
        pair.coarse, pair.fine, pair.fine_to_coarse, (fine_cells,) * dim, (coarse_cells,) * dim
    )


def cell_vertex_coordinates(mesh: fd.MeshGeometry) -> np.ndarray:
    """Vertex coordinates of every local cell, shape ``(cells, vertices_per_cell, gdim)``.

    Cells are in the DG0 numbering of ``mesh`` (the numbering of piecewise-constant fields).
    """
    coords = mesh.coordinates
    V0 = fd.FunctionSpace(mesh, "DG", 0)
    cell_nodes = coords.function_space().cell_node_map().values
    dg0_of_cell = V0.cell_node_map().values[:, 0]
    out = np.empty((len(dg0_of_cell),) + (cell_nodes.shape[1], mesh.geometric_dimension))
    out[dg0_of_cell] = coords.dat.data_ro_with_halos[cell_nodes]
    return out[: V0.dof_dset.size]


def cell_centroids(mesh: fd.MeshGeometry) -> np.ndarray:
    """Vertex-average centroid of every owned cell (DG0 numbering), shape ``(cells, gdim)``."""
    return cell_vertex_coordinates(mesh).mean(axis=1)


def nest(coarse: fd.MeshGeometry, fine: fd.MeshGeometry, tolerance: float = 1e-10) -> NestedMeshes:
    """Check that ``fine`` nests in ``coarse`` and compute the fine → coarse cell map.

    Parameters
    ----------
    coarse : firedrake.MeshGeometry
        Coarse mesh. If it is not on ``COMM_SELF`` it is rebuilt there from its coordinates.
    fine : firedrake.MeshGeometry
        Fine mesh.
    tolerance : float
        Relative tolerance of the containment test (in reference coordinates).

    Raises
    ------
    ValueError
        If a fine cell is not contained in a single coarse cell, naming the cell.
    """
    if coarse.comm.size != 1:
        raise ValueError(
            "the coarse mesh must live on COMM_SELF (it is replicated on every rank); "
            "build it with comm=COMM_SELF"
        )
    if coarse.topological_dimension != fine.topological_dimension:
        raise ValueError(
            f"coarse mesh is {coarse.topological_dimension}D but fine mesh is "
            f"{fine.topological_dimension}D"
        )
    fine_cells = cell_vertex_coordinates(fine)
    centroids = fine_cells.mean(axis=1)
    parents, _, _ = coarse.locate_cells_ref_coords_and_dists(centroids, tolerance=tolerance)
    # locate_cells numbers cells in the mesh's own cell order: convert to DG0 numbering.
    V0c = fd.FunctionSpace(coarse, "DG", 0)
    dg0_of_cell = V0c.cell_node_map().values[:, 0]
    bad = np.flatnonzero(parents < 0)
    if bad.size:
        raise ValueError(
            f"fine mesh does not nest in the coarse mesh: the centroid {centroids[bad[0]]} of "
            f"fine cell {bad[0]} lies outside every coarse cell ({bad.size} such cells)"
        )
    parents = dg0_of_cell[parents]
    coarse_cells = cell_vertex_coordinates(coarse)[parents]
    inside = _contained(fine_cells, coarse_cells, coarse.ufl_cell().cellname, tolerance)
    if not inside.all():
        k = int(np.flatnonzero(~inside)[0])
        raise ValueError(
            f"fine mesh does not nest in the coarse mesh: fine cell {k} with vertices "
            f"{fine_cells[k].tolist()} crosses the boundary of coarse cell {parents[k]} "
            f"({int((~inside).sum())} such cells)"
        )
    return NestedMeshes(coarse, fine, parents.astype(np.int64))


def _contained(fine_cells, coarse_cells, cellname: str, tol: float) -> np.ndarray:
    """Whether each fine cell's vertices lie in the corresponding coarse cell."""
    if cellname in ("triangle", "tetrahedron"):
        # Barycentric coordinates of the fine vertices in the affine coarse simplex.
        origin = coarse_cells[:, :1, :]
        J = np.swapaxes(coarse_cells[:, 1:, :] - origin, 1, 2)  # (n, gdim, gdim)
        lam = np.linalg.solve(J[:, None], (fine_cells - origin)[..., None])[..., 0]
        bary = np.concatenate([1.0 - lam.sum(-1, keepdims=True), lam], axis=-1)
        return (bary >= -tol).all(axis=(1, 2))
    if cellname in ("quadrilateral", "hexahedron"):
        lo, hi = coarse_cells.min(axis=1), coarse_cells.max(axis=1)
        box = coarse_cells.shape[1] == 2 ** coarse_cells.shape[2]
        if not box:
            raise NotImplementedError(f"nesting test for {cellname} cells")
        scale = (hi - lo).max(axis=1)[:, None, None]
        ok = (fine_cells >= lo[:, None] - tol * scale) & (fine_cells <= hi[:, None] + tol * scale)
        return ok.all(axis=(1, 2))
    raise NotImplementedError(f"nesting test for {cellname} cells")


def mesh_from_geo(
    geo_path: str | os.PathLike, mesh_size: float | None = None, comm=COMM_WORLD
) -> fd.MeshGeometry:
    """Mesh a Gmsh ``.geo`` file with the gmsh Python API and load it into Firedrake.

    Parameters
    ----------
    geo_path : path
        The ``.geo`` source (:mod:`fem_ms.geometries` holds the ones shipped with fem-ms). Physical
        groups become Firedrake boundary markers.
    mesh_size : float, optional
        Maximum element size (``Mesh.MeshSizeMax``); the file's own sizes if ``None``.
    comm : mpi4py.MPI.Comm
        Communicator of the resulting mesh; rank 0 runs gmsh.

    Returns
    -------
    firedrake.MeshGeometry
    """
    with _gmsh_file(geo_path, mesh_size, comm) as msh:
        return fd.Mesh(msh, comm=comm)


def gmsh_hierarchy(
    geo_path: str | os.PathLike, refinements: int, mesh_size: float | None = None, comm=COMM_WORLD
) -> NestedMeshes:
    """A Gmsh mesh as the coarse mesh and its ``refinements``-times uniformly refined fine mesh.

    The fine mesh comes from Firedrake's ``MeshHierarchy`` (each refinement halves the cell
    size), so it nests in the coarse mesh by construction; the map is checked all the same.
    """
    if not isinstance(refinements, (int, np.integer)) or refinements < 0:
        raise ValueError(f"refinements must be a non-negative integer, got {refinements!r}")
    with _gmsh_file(geo_path, mesh_size, comm) as msh:
        coarse = fd.Mesh(msh, comm=COMM_SELF)
        distributed = fd.Mesh(msh, comm=comm)
    fine = fd.MeshHierarchy(distributed, refinements)[-1] if refinements else distributed
    return nest(coarse, fine)


class _gmsh_file:
    """Context manager: a temporary ``.msh`` meshed from a ``.geo`` by rank 0 of ``comm``."""

    def __init__(self, geo_path, mesh_size, comm):
        self.geo_path = Path(geo_path)
        if not self.geo_path.is_file():
            raise FileNotFoundError(f"Gmsh geometry file not found: {self.geo_path}")
        if mesh_size is not None and not mesh_size > 0:
            raise ValueError(f"mesh_size must be positive, got {mesh_size!r}")
        self.mesh_size, self.comm = mesh_size, comm

    def __enter__(self) -> str:
        comm = self.comm
        self.tmpdir = comm.bcast(tempfile.mkdtemp(prefix="fem-ms-gmsh-") if comm.rank == 0 else None)
        self.msh = str(Path(self.tmpdir) / (self.geo_path.stem + ".msh"))
        error = None
        if comm.rank == 0:
            try:
                _run_gmsh(self.geo_path, self.msh, self.mesh_size)
            except Exception as exc:  # re-raised on every rank below
                error = (type(exc), f"gmsh failed on {self.geo_path}: {exc}")
        error = comm.bcast(error)
        if error:
            raise (ValueError if issubclass(error[0], ValueError) else RuntimeError)(error[1])
        return self.msh

    def __exit__(self, *exc):
        self.comm.barrier()
        if self.comm.rank == 0:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return False


def _run_gmsh(geo_path: Path, msh_path: str, mesh_size: float | None) -> None:
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.open(str(geo_path))
        dim = gmsh.model.getDimension()
        if dim < 1:
            raise ValueError(f"{geo_path} defines no curve, surface or volume to mesh")
        if mesh_size is not None:
            gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
        gmsh.model.mesh.generate(dim)
        if not any(len(tags) for _, tags, _ in [gmsh.model.mesh.getElements(dim)]):
            raise ValueError(f"{geo_path}: gmsh made no {dim}D elements")
        gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
        gmsh.write(msh_path)
    finally:
        gmsh.finalize()
