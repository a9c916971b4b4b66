"""Time series for ParaView (fem_ms.export), read back with meshio: the heat equation step by
step through solve_heat's callback, arrays of snapshots, and the same files from two MPI ranks."""

import meshio
import numpy as np
import pytest

import firedrake as fd
from pyop2.mpi import COMM_SELF, COMM_WORLD

from fem_ms import Heat, solve
from fem_ms.export import TimeSeriesWriter, write_time_series


def read_series(path):
    """(times, points, cells, [point_data], [cell_data]) of an XDMF time series, through meshio."""
    with meshio.xdmf.TimeSeriesReader(path) as reader:
        points, cells = reader.read_points_cells()
        steps = [reader.read_data(k) for k in range(reader.num_steps)]
    return [t for t, _, _ in steps], points, cells, [p for _, p, _ in steps], [c for _, _, c in steps]


def run_heat_series(comm, path):
    """A small heat problem written step by step; returns the snapshots of u by coordinates."""
    mesh = fd.UnitSquareMesh(4, 3, quadrilateral=True, comm=comm)
    V = fd.FunctionSpace(mesh, "CG", 1)
    x, y = fd.SpatialCoordinate(mesh)
    kappa = fd.Function(fd.FunctionSpace(mesh, "DG", 0)).interpolate(1 + x)
    initial = fd.Function(V).interpolate(x * (1 - x) * y * (1 - y))
    problem = Heat(V, kappa, forcing=1.0, dt=0.01, t_end=0.03, initial=initial)
    snapshots = {}

    def record(step, t, u):
        series.write(t, u=u, kappa=kappa)
        X = fd.Function(fd.VectorFunctionSpace(mesh, "CG", 1)).interpolate(fd.SpatialCoordinate(mesh))
        pairs = comm.allgather(list(zip(map(tuple, X.dat.data_ro.round(12)), u.dat.data_ro.copy())))
        snapshots[t] = dict(pair for part in pairs for pair in part)

    with TimeSeriesWriter(path, mesh) as series:
        solve(problem, callback=record, progress=False)
    return snapshots


def check_heat_series(path, snapshots):
    times, points, cells, point_data, cell_data = read_series(path)
    np.testing.assert_allclose(times, [0.0, 0.01, 0.02, 0.03])
    assert len(points) == 20 and cells[0].type == "quad" and len(cells[0].data) == 12
    for t, values in zip(times, point_data):
        expected = [snapshots[t][(round(p[0], 12), round(p[1], 12))] for p in points]
        np.testing.assert_allclose(values["u"], expected, rtol=0, atol=1e-14)
    centroids = points[cells[0].data].mean(axis=1)
    for values in cell_data:
        np.testing.assert_allclose(values["kappa"][0], 1 + centroids[:, 0], atol=1e-12)
    assert np.ptp(point_data[-1]["u"]) > 0 and not np.allclose(point_data[0]["u"], point_data[-1]["u"])


def test_heat_time_series_is_read_back_by_meshio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # meshio's own writer would put the .h5 here, not beside the .xdmf
    path = tmp_path / "out" / "heat.xdmf"
    snapshots = run_heat_series(COMM_SELF, path)
    check_heat_series(path, snapshots)
    assert sorted(p.name for p in path.parent.iterdir()) == ["heat.h5", "heat.xdmf"]
    assert "heat.h5:/" in path.read_text() and not list(tmp_path.glob("*.h5"))


@pytest.mark.parallel(nprocs=2)
def test_heat_time_series_from_two_ranks_is_the_serial_one():
    import tempfile
    from pathlib import Path

    root = Path(COMM_WORLD.bcast(tempfile.mkdtemp(prefix="fem-ms-series-") if COMM_WORLD.rank == 0 else None))
    snapshots = run_heat_series(COMM_WORLD, root / "two.xdmf")
    if COMM_WORLD.rank == 0:
        check_heat_series(root / "two.xdmf", snapshots)
        serial = run_heat_series(COMM_SELF, root / "one.xdmf")
        for t in serial:
            assert serial[t].keys() == snapshots[t].keys()
            np.testing.assert_allclose([serial[t][k] for k in serial[t]], [snapshots[t][k] for k in serial[t]],
                                       rtol=1e-10, atol=1e-14)


def test_a_failed_series_leaves_no_file(tmp_path):
    mesh = fd.UnitSquareMesh(2, 2, comm=COMM_SELF)
    u = fd.Function(fd.FunctionSpace(mesh, "CG", 1))
    path = tmp_path / "s.xdmf"
    with pytest.raises(ValueError, match="times must increase, got 0.5 after 1.0"):
        with TimeSeriesWriter(path, mesh) as series:
            series.write(1.0, u=u)
            series.write(0.5, u=u)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="no state was written"):
        with TimeSeriesWriter(path, mesh):
            pass
    with pytest.raises(ValueError, match="only scalar P1/Q1 and DG0"):
        with TimeSeriesWriter(path, mesh) as series:
            series.write(0.0, v=fd.Function(fd.VectorFunctionSpace(mesh, "CG", 1)))
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="an .xdmf file"):
        TimeSeriesWriter(tmp_path / "s.vtu", mesh)


def test_snapshot_arrays_as_a_time_series(tmp_path):
    """write_time_series: what CylinderFlow.run returns (times, velocity (T, N, 2), pressure (T, N))."""
    rng = np.random.default_rng(0)
    points = rng.random((5, 2))
    cells = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4]])
    times = np.array([0.25, 0.5, 0.75])
    velocity, pressure = rng.random((3, 5, 2)), rng.random((3, 5))
    path = write_time_series(tmp_path / "flow.xdmf", points, cells, times, {"velocity": velocity,
                                                                            "pressure": pressure})
    read_times, read_points, read_cells, point_data, _ = read_series(path)
    np.testing.assert_array_equal(read_times, times)
    np.testing.assert_array_equal(read_points[:, :2], points)
    np.testing.assert_array_equal(read_cells[0].data, cells)
    for k in range(3):
        np.testing.assert_array_equal(point_data[k]["velocity"], velocity[k])
        np.testing.assert_array_equal(point_data[k]["pressure"], pressure[k])
    with pytest.raises(ValueError, match=r"point data 'p' has shape \(2, 5\), expected \(3, 5, ...\)"):
        write_time_series(tmp_path / "bad.xdmf", points, cells, times, {"p": pressure[:2]})
    with pytest.raises(ValueError, match="times must increase"):
        write_time_series(tmp_path / "bad.xdmf", points, cells, times[::-1], {"p": pressure})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.h5", "flow.xdmf"]
