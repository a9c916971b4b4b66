import meshio
import numpy as np
import pytest

import firedrake as fd
from pyop2.mpi import COMM_SELF

from fem_ms import geometries, meshes
from fem_ms.export import write_fields


@pytest.mark.parametrize("dim,quad", [(2, True), (2, False), (3, True), (3, False)])
def test_structured_hierarchy_parent_map(dim, quad):
    nc, nf = 2, 6
    pair = meshes.structured_hierarchy(nc, nf, dim=dim, quadrilateral=quad)
    fine_cells = meshes.cell_vertex_coordinates(pair.fine)
    coarse_cells = meshes.cell_vertex_coordinates(pair.coarse)
    parents = pair.fine_to_coarse
    assert parents.shape == (len(fine_cells),)
    # every fine cell holds the same number of fine cells per coarse cell
    counts = np.bincount(parents, minlength=len(coarse_cells))
    assert np.all(counts == counts[0]) and counts.sum() == len(fine_cells)
    # independent check: each fine vertex lies in the bounding box of its parent cell, and for
    # simplices the fine centroid lies in the parent by barycentric coordinates
    lo = coarse_cells.min(axis=1)[parents]
    hi = coarse_cells.max(axis=1)[parents]
    assert np.all(fine_cells >= lo[:, None] - 1e-12) and np.all(fine_cells <= hi[:, None] + 1e-12)
    # volumes add up: each coarse cell's volume equals the sum of its children's
    vol_f = fd.assemble(fd.CellVolume(pair.fine) * fd.TestFunction(fd.FunctionSpace(pair.fine, "DG", 0)) * fd.dx)
    vol_c = fd.assemble(fd.CellVolume(pair.coarse) * fd.TestFunction(fd.FunctionSpace(pair.coarse, "DG", 0)) * fd.dx)
    # ∫_K |K| v dx = |K|² for the DG0 basis function of K
    np.testing.assert_allclose(np.bincount(parents, np.sqrt(vol_f.dat.data_ro)), np.sqrt(vol_c.dat.data_ro))


def test_refinement_that_does_not_nest_is_rejected():
    with pytest.raises(ValueError, match="not a multiple"):
        meshes.structured_hierarchy(5, 12)
    with pytest.raises(ValueError, match="does not nest"):
        meshes.nest(fd.UnitSquareMesh(3, 3, comm=COMM_SELF), fd.UnitSquareMesh(4, 4))
    with pytest.raises(ValueError, match="does not nest"):
        # same cell count, opposite diagonals: triangles cross the coarse diagonals
        meshes.nest(fd.UnitSquareMesh(2, 2, diagonal="left", comm=COMM_SELF),
                    fd.UnitSquareMesh(4, 4, diagonal="right"))


def test_gmsh_geo_mesh_and_hierarchy():
    with geometries.geo_file("unit_square.geo") as geo:
        mesh = meshes.mesh_from_geo(geo, mesh_size=0.2)
        pair = meshes.gmsh_hierarchy(geo, refinements=2, mesh_size=0.3)
    assert fd.assemble(fd.Constant(1.0) * fd.dx(domain=mesh)) == pytest.approx(1.0)
    for marker in (1, 2, 3, 4):
        assert fd.assemble(fd.Constant(1.0) * fd.ds(marker, domain=mesh)) == pytest.approx(1.0)
    n_coarse = pair.coarse.num_cells()
    assert pair.fine.comm.allreduce(len(pair.fine_to_coarse)) == 16 * n_coarse
    assert np.all(np.bincount(pair.fine_to_coarse, minlength=n_coarse) == 16)


def test_missing_geo_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.geo"):
        meshes.mesh_from_geo(tmp_path / "nothere.geo")


@pytest.mark.parametrize("quad", [True, False])
@pytest.mark.parametrize("suffix", [".vtu", ".xdmf"])
def test_export_round_trip(tmp_path, quad, suffix):
    mesh = fd.UnitSquareMesh(3, 4, quadrilateral=quad)
    x, y = fd.SpatialCoordinate(mesh)
    u = fd.Function(fd.FunctionSpace(mesh, "CG", 1)).interpolate(x + 2 * y)
    k = fd.Function(fd.FunctionSpace(mesh, "DG", 0)).interpolate(3 * x)
    path = write_fields(tmp_path / f"fields{suffix}", mesh, u=u, kappa=k)
    m = meshio.read(path)
    np.testing.assert_allclose(m.point_data["u"], m.points[:, 0] + 2 * m.points[:, 1], atol=1e-12)
    centroids = m.points[m.cells[0].data].mean(axis=1)
    np.testing.assert_allclose(m.cell_data["kappa"][0], 3 * centroids[:, 0], atol=1e-12)
    if quad:  # VTK ordering: the cells have positive area as polygons
        p = m.points[m.cells[0].data][:, :, :2]
        area = 0.5 * np.sum(p[:, :, 0] * np.roll(p[:, :, 1], -1, 1) - np.roll(p[:, :, 0], -1, 1) * p[:, :, 1], 1)
        np.testing.assert_allclose(area, 1 / 12)
    assert not list(tmp_path.glob(".*part*"))


def test_shipped_geometries_are_package_data():
    """Every shipped .geo opens by name; an unknown name lists the shipped ones."""
    shipped = geometries.names()
    assert {"cylinder_M1.geo", "cylinder_M4.geo", "notched_triangle.geo", "unit_square.geo"} <= set(shipped)
    for name in shipped:
        with geometries.geo_file(name) as geo:
            assert geo.is_file() and "Physical" in geo.read_text()
    with pytest.raises(FileNotFoundError, match=r"no Gmsh geometry 'cylinder_M9.geo'; shipped: \['cylinder_M1.geo'"):
        with geometries.geo_file("cylinder_M9.geo"):
            pass
