"""XDMF sidecars of the dataset files (fem_ms.data.xdmf), read back with meshio: every field of
every sample where the file has it, on the grid points it belongs to."""

import xml.etree.ElementTree as ET

import h5py
import meshio
import numpy as np
import pytest

from fem_ms.data import BurgersConfig, DarcyNotchConfig, GMsFEMBasisConfig, MultilevelConfig, generate
from fem_ms.data.xdmf import sidecar_path, write_xdmf


class SidecarReader(meshio.xdmf.TimeSeriesReader):
    """meshio's XDMF time-series reader on one temporal collection of a sidecar, with XDMF
    hyperslabs (start, stride, count) applied to the HDF5 datasets meshio reads whole."""

    def __init__(self, filename, collection: str):
        super().__init__(filename)
        grids = [g for g in self.domain if g.get("Name") == collection]
        assert len(grids) == 1, f"no collection {collection!r}"
        self.collection = list(grids[0])
        self.num_steps = len(self.collection)
        self.mesh_grid = self.collection[0]

    def _read_data_item(self, data_item):
        if data_item.get("ItemType") != "HyperSlab":
            return super()._read_data_item(data_item)
        selection, data = (super(SidecarReader, self)._read_data_item(child) for child in data_item)
        start, stride, count = selection
        return data[tuple(slice(b, b + s * c, s) for b, s, c in zip(start, stride, count))]

    def steps(self):
        if self.cells is None:
            self.read_points_cells()
        return [self.read_data(k) for k in range(self.num_steps)]


def collections(path) -> list[str]:
    return [g.get("Name") for g in ET.parse(path).getroot().find("Domain")]


def check_xml(path, vectors=()):
    """Every XInclude points at the first step of its collection, which holds the geometry; the
    attributes are scalars but for ``vectors``."""
    root = ET.parse(path).getroot()
    for attribute in root.iter("Attribute"):
        assert attribute.get("AttributeType") == ("Vector" if attribute.get("Name") in vectors else "Scalar")
    for collection in root.find("Domain"):
        first, *rest = list(collection)
        assert first.find("Topology") is not None and first.find("Geometry") is not None
        for step in rest:
            include = step.find("{http://www.w3.org/2001/XInclude}include")
            if include is not None:
                assert f'//Grid[@Name="{collection.get("Name")}"]/Grid[1]/' in include.get("xpointer")
                assert step.find("Topology") is None


def test_multilevel_sidecar(tmp_path):
    path = generate(MultilevelConfig(name="m", samples=3, levels=(4, 8), forcing="random"), tmp_path, progress=False)
    sidecar = sidecar_path(path)
    assert sidecar == tmp_path / "m.xdmf" and sorted(collections(sidecar)) == ["level_4", "level_8"]
    check_xml(sidecar)
    with h5py.File(path) as fh:
        for n in (4, 8):
            with SidecarReader(sidecar, f"level_{n}") as reader:
                points, cells = reader.read_points_cells()
                steps = reader.steps()
            assert cells[0].type == "quad" and len(points) == (n + 1) ** 2 and len(cells[0].data) == n * n
            p = points[cells[0].data][:, :, :2]  # counter-clockwise, unit cells of 1/n²
            area = 0.5 * np.sum(p[..., 0] * np.roll(p[..., 1], -1, 1) - np.roll(p[..., 0], -1, 1) * p[..., 1], 1)
            np.testing.assert_allclose(area, 1 / n**2)
            vertex = tuple(np.rint(points[:, :2] * n).astype(int).T)  # (i, j) of the point (i/n, j/n)
            cell = tuple(np.floor(p.mean(axis=1) * n).astype(int).T)
            assert [t for t, _, _ in steps] == [0.0, 1.0, 2.0]
            for s, (_, point_data, cell_data) in enumerate(steps):
                for name in ("u", "f"):  # u[s, i, j] at (x_i, y_j)
                    np.testing.assert_array_equal(point_data[name].reshape(-1), fh[f"level_{n}/{name}"][s][vertex])
                np.testing.assert_array_equal(cell_data["kappa"][0].reshape(-1), fh[f"level_{n}/kappa"][s][cell])


def test_darcy_notch_and_burgers_sidecars(tmp_path):
    path = generate(DarcyNotchConfig(name="d", samples=2, mesh_size=0.1, grid=9, train_fraction=1.0), tmp_path,
                    progress=False)
    sidecar = sidecar_path(path)
    assert collections(sidecar) == ["mesh", "grid"]
    check_xml(sidecar)
    with h5py.File(path) as fh, SidecarReader(sidecar, "mesh") as mesh, SidecarReader(sidecar, "grid") as grid:
        points, cells = mesh.read_points_cells()
        np.testing.assert_array_equal(points, fh["coordinates"][()])
        np.testing.assert_array_equal(cells[0].data, fh["cells"][()])
        for s, (_, point_data, _) in enumerate(mesh.steps()):
            np.testing.assert_array_equal(point_data["pressure"].reshape(-1), fh["pressure"][s])
        points, _ = grid.read_points_cells()
        g = fh["grid_x"][()]
        index = tuple(np.rint(points[:, :2] * (len(g) - 1)).astype(int).T)
        for s, (_, point_data, _) in enumerate(grid.steps()):
            np.testing.assert_array_equal(point_data["pressure_grid"].reshape(-1), fh["pressure_grid"][s][index])
        assert np.isnan(fh["pressure_grid"][0]).any()  # outside the domain, as stored

    path = generate(BurgersConfig(name="b", samples=3, points=16, train_fraction=1.0), tmp_path, progress=False)
    check_xml(sidecar_path(path))
    with h5py.File(path) as fh, SidecarReader(sidecar_path(path), "grid") as reader:
        points, cells = reader.read_points_cells()
        np.testing.assert_array_equal(points[:, 0], fh["x"][()])
        assert cells[0].type == "line" and len(cells[0].data) == 15
        for s, (t, point_data, _) in enumerate(reader.steps()):
            assert t == s
            for name in ("u0", "u"):
                np.testing.assert_array_equal(point_data[name].reshape(-1), fh[name][s])


@pytest.mark.slow
def test_cylinder_flow_sidecar(tmp_path):
    from fem_ms.data import CylinderFlowConfig

    config = CylinderFlowConfig(name="c", samples=2, meshes=(1,), t_end=0.75, dt=0.25, save_every=1)
    path = generate(config, tmp_path, progress=False)
    sidecar = sidecar_path(path)
    assert collections(sidecar) == ["mesh_1_sample_0", "mesh_1_sample_1"]
    check_xml(sidecar, vectors=("velocity",))
    with h5py.File(path) as fh, SidecarReader(sidecar, "mesh_1_sample_1") as reader:
        points, cells = reader.read_points_cells()
        np.testing.assert_array_equal(points, fh["mesh_1/coordinates"][()])
        steps = reader.steps()
        np.testing.assert_array_equal([t for t, _, _ in steps], fh["times"][()])
        for k, (_, point_data, _) in enumerate(steps):
            np.testing.assert_array_equal(point_data["velocity"].reshape(-1, 2), fh["mesh_1/velocity"][1, k])
            np.testing.assert_array_equal(point_data["pressure"].reshape(-1), fh["mesh_1/pressure"][1, k])


def test_sidecars_are_written_where_there_is_a_mesh(tmp_path):
    """gmsfem_basis files (patches, no mesh) get none; a finished dataset without a sidecar (made
    before sidecars) gets one when generated again; bad samples are named."""
    path = generate(GMsFEMBasisConfig(name="b", samples=1, fine=12, coarse=3, n_basis=2), tmp_path, progress=False)
    assert write_xdmf(path) is None and not sidecar_path(path).exists()
    config = BurgersConfig(name="u", samples=2, points=16)
    path = generate(config, tmp_path, progress=False)
    text = sidecar_path(path).read_text()
    sidecar_path(path).unlink()
    assert generate(config, tmp_path, progress=False) == path and sidecar_path(path).read_text() == text
    assert write_xdmf(path, samples=[1]) == sidecar_path(path)
    with SidecarReader(sidecar_path(path), "grid") as reader:
        assert [t for t, _, _ in reader.steps()] == [1.0]
    with pytest.raises(ValueError, match=r"has samples 0 to 1, not \[2\]"):
        write_xdmf(path, samples=[0, 2])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["b.h5", "u.h5", "u.xdmf"]
