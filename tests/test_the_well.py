"""The Well's HDF5 layout (fem_ms.data.the_well), read back with h5py the way The Well's
WellDataset reads it: attributes, dimensions, boundary conditions, scalars and fields."""

import json

import h5py
import numpy as np
import pytest
import yaml
from scipy.interpolate import RegularGridInterpolator

from fem_ms.data import (
    BurgersConfig,
    GMsFEMBasisConfig,
    MultilevelConfig,
    NavierStokesForcingConfig,
    NavierStokesTorusConfig,
    generate,
)
from fem_ms.data.the_well import export_the_well


def strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def check_layout(fh, name, n_trajectories, spatial_dims, fields, parameters, bc_type):
    """What WellDataset reads of a file, and nothing missing."""
    assert fh.attrs["dataset_name"] == name and fh.attrs["grid_type"] == "cartesian"
    assert fh.attrs["n_spatial_dims"] == len(spatial_dims) and fh.attrs["n_trajectories"] == n_trajectories
    assert strings(fh.attrs["simulation_parameters"]) == list(parameters)
    assert {key: fh.attrs[key] for key in parameters} == parameters
    assert strings(fh["dimensions"].attrs["spatial_dims"]) == spatial_dims
    for dim in ["time", *spatial_dims]:
        d = fh["dimensions"][dim]
        assert not d.attrs["sample_varying"] and d.attrs["time_varying"] == (dim == "time")
    assert sorted(fh["boundary_conditions"]) == sorted(f"{d}_{bc_type}" for d in spatial_dims)
    for d in spatial_dims:
        bc = fh["boundary_conditions"][f"{d}_{bc_type}"]
        assert bc.attrs["bc_type"] == bc_type and strings(bc.attrs["associated_dims"]) == [d]
        assert bc["mask"].dtype == bool and bc["mask"].shape == fh["dimensions"][d].shape
        assert bc["mask"][0] and bc["mask"][-1] and not bc["mask"][1:-1].any()
    assert strings(fh["scalars"].attrs["field_names"]) == list(parameters)
    for key, value in parameters.items():
        s = fh["scalars"][key]
        assert s[()] == value and not s.attrs["sample_varying"] and not s.attrs["time_varying"]
    assert strings(fh["t0_fields"].attrs["field_names"]) == list(fields)
    assert strings(fh["t1_fields"].attrs["field_names"]) == strings(fh["t2_fields"].attrs["field_names"]) == []
    grid = tuple(fh["dimensions"][d].shape[-1] for d in spatial_dims)
    steps = fh["dimensions"]["time"].shape[-1]
    for field, time_varying in fields.items():
        f = fh["t0_fields"][field]
        assert list(f.attrs["dim_varying"]) == [True] * len(spatial_dims)
        assert f.attrs["sample_varying"] and f.attrs["time_varying"] == time_varying
        assert f.shape == (n_trajectories,) + ((steps,) if time_varying else ()) + grid


def test_burgers_in_the_well_layout(tmp_path):
    config = BurgersConfig(name="burgers", samples=5, points=16, train_fraction=0.6, validation_fraction=0.2)
    path = generate(config, tmp_path / "data", progress=False)
    written = export_the_well(path, tmp_path / "well", block=2)
    assert {split: p.relative_to(tmp_path / "well").as_posix() for split, p in written.items()} == {
        "train": "train/burgers.hdf5", "validation": "valid/burgers.hdf5", "test": "test/burgers.hdf5"}
    with h5py.File(path) as source, h5py.File(written["train"]) as fh:
        check_layout(fh, "burgers", 3, ["x"], {"u": True}, {"viscosity": 0.1}, "periodic")
        train = source["splits/train"][()]
        np.testing.assert_array_equal(fh["dimensions"]["time"][()], [0.0, 1.0])
        np.testing.assert_array_equal(fh["dimensions"]["x"][()], source["x"][()])
        np.testing.assert_array_equal(fh["t0_fields/u"][:, 0], source["u0"][train])
        np.testing.assert_array_equal(fh["t0_fields/u"][:, 1], source["u"][train])
        assert json.loads(fh.attrs["config"])["samples"] == 5 and fh.attrs["source"] == "burgers.h5"
        u = fh["t0_fields/u"][()]
    assert not [*(tmp_path / "well").rglob(".*"), *tmp_path.glob(".stats.yaml*")]
    # the training split's statistics where The Well keeps them (neuraloperator reads data/../stats.yaml)
    stats = yaml.safe_load((tmp_path / "stats.yaml").read_text())
    delta = np.diff(u, axis=1)
    expected = {"mean": u.mean(), "std": u.std(), "rms": np.sqrt(np.mean(u ** 2)),
                "mean_delta": delta.mean(), "std_delta": delta.std(), "rms_delta": np.sqrt(np.mean(delta ** 2))}
    for key, value in expected.items():
        assert stats[key]["u"] == pytest.approx(value, rel=1e-12), key


def test_multilevel_level_in_the_well_layout(tmp_path):
    path = generate(MultilevelConfig(name="m", samples=3, levels=(4, 8), forcing="random", train_fraction=1.0,
                                     validation_fraction=0.0), tmp_path, progress=False)
    written = export_the_well(path, tmp_path / "well", level=8)
    assert list(written) == ["train"] and written["train"].name == "m_level_8.hdf5"
    with h5py.File(path) as source, h5py.File(written["train"]) as fh:
        check_layout(fh, "m_level_8", 3, ["x", "y"], {"kappa": False, "u": False, "f": False},
                     {"contrast": 9600.0, "energy": 0.95}, "wall")
        centres = (np.arange(8) + 0.5) / 8
        np.testing.assert_allclose(fh["dimensions"]["x"][()], centres)
        np.testing.assert_array_equal(fh["dimensions"]["time"][()], [0.0])
        np.testing.assert_array_equal(fh["t0_fields/kappa"][()], source["level_8/kappa"][()])
        # u and f: the Q1 functions at the cell centres (bilinear interpolation of the vertex values)
        x = source["level_8/x"][()]
        points = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1)
        for name in ("u", "f"):
            for s in range(3):
                q1 = RegularGridInterpolator((x, x), source[f"level_8/{name}"][s])
                np.testing.assert_allclose(fh[f"t0_fields/{name}"][s], q1(points), rtol=1e-12, atol=1e-15)


def test_navier_stokes_in_the_well_layout(tmp_path):
    config = NavierStokesTorusConfig(name="t", samples=3, resolution=16, levels=(8, 16), dt=0.02, t_end=1.0,
                                     snapshot_dt=0.5, train_fraction=1.0)
    path = generate(config, tmp_path / "data", progress=False)
    with pytest.raises(ValueError, match="give the level"):
        export_the_well(path, tmp_path / "well")
    written = export_the_well(path, tmp_path / "well", level=8, block=2)
    with h5py.File(path) as source, h5py.File(written["train"]) as fh:
        check_layout(fh, "t_level_8", 3, ["x", "y"], {"w": True}, {"viscosity": 1e-3}, "periodic")
        np.testing.assert_array_equal(fh["dimensions"]["time"][()], [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(fh["dimensions"]["x"][()], np.arange(8) / 8)
        np.testing.assert_array_equal(fh["t0_fields"]["w"][()], source["level_8/w"][()])

    config = NavierStokesForcingConfig(name="g", samples=2, resolution=16, levels=(16,), t_end=0.5,
                                       train_fraction=1.0)
    path = generate(config, tmp_path / "data", progress=False)
    written = export_the_well(path, tmp_path / "well", level=16)
    with h5py.File(path) as source, h5py.File(written["train"]) as fh:
        check_layout(fh, "g_level_16", 2, ["x", "y"], {"w": True, "f": False}, {"viscosity": 0.025}, "periodic")
        np.testing.assert_array_equal(fh["dimensions"]["time"][()], [0.0, 0.5])
        w = fh["t0_fields"]["w"][()]
        np.testing.assert_array_equal(w[:, 0], np.broadcast_to(source["level_16/w0"][()], (2, 16, 16)))
        np.testing.assert_array_equal(w[:, 1], source["level_16/w"][()])
        np.testing.assert_array_equal(fh["t0_fields"]["f"][()], source["level_16/f"][()])


def test_only_grid_datasets_are_exported(tmp_path):
    path = generate(MultilevelConfig(name="m", samples=2, levels=(4, 8)), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"give the level to export \(level=n; levels: \[4, 8\]\)"):
        export_the_well(path, tmp_path / "well")
    with pytest.raises(ValueError, match="has no level 16; levels: \\[4, 8\\]"):
        export_the_well(path, tmp_path / "well", level=16)
    basis = generate(GMsFEMBasisConfig(name="b", samples=1, fine=12, coarse=3, n_basis=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="'gmsfem_basis' dataset; The Well's layout is for grid datasets"):
        export_the_well(basis, tmp_path / "well")
    assert not (tmp_path / "well").exists()
