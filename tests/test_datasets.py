"""Dataset generation end to end: schema, determinism, resume, refusal, level relations."""

import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from fem_ms.data import DatasetFile, GMsFEMBasisConfig, MultilevelConfig, generate, load_config

BASIS = GMsFEMBasisConfig(name="basis", samples=3, fine=12, coarse=3, n_basis=3)
LEVELS = MultilevelConfig(name="levels", samples=3, levels=(4, 8, 16), forcing="random")


def read(path):
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        attrs = dict(fh.attrs)
    return out, attrs


def test_basis_dataset_schema(tmp_path):
    path = generate(BASIS, tmp_path, progress=False)
    data, attrs = read(path)
    assert attrs["kind"] == "gmsfem_basis" and attrs["petsc_version"] == "3.26.0"
    assert load_config(dict(kind="gmsfem_basis", **{k: v for k, v in
                                                    __import__("json").loads(attrs["config"]).items()
                                                    if k != "kind"})) == BASIS
    m = 12 // 3
    assert data["full/kappa"].shape == (3, 4, 2 * m, 2 * m)
    assert data["half/kappa"].shape == (3, 8, 2 * m, m)
    assert data["corner/kappa"].shape == (3, 4, m, m)
    assert data["full/basis"].shape == (3, 4, 3, 2 * m + 1, 2 * m + 1)
    assert data["full/eigenvalues"].shape == (3, 4, 3)
    assert np.all(np.abs(data["full/eigenvalues"][:, :, 0]) < 1e-8)  # λ_1 = 0 ...
    b = data["full/basis"][:, :, 0]
    np.testing.assert_allclose(b, b[..., :1, :1] * np.ones_like(b), rtol=1e-8)  # ... with φ_1 constant
    assert list(data["splits/train"]) == [0, 1] and list(data["splits/test"]) == [2]
    assert list(data["splits/validation"]) == []  # validation_fraction = 0 by default
    DatasetFile(path).verify()
    assert np.all(data["kappa_seed"] == [0, 2, 4])
    # the canonical vertex sits at the low end of the boundary axes: χ = 1 there
    assert np.all(data["corner/chi"][:, 0, 0] == 1.0)
    assert np.all(data["half/chi"][:, m, 0] == 1.0)


def test_deterministic_and_resumable(tmp_path, capsys):
    full = generate(LEVELS, tmp_path / "a", progress=False)
    assert generate(LEVELS, tmp_path / "b", progress=False, max_new_samples=1) is None  # "killed"
    parts = tmp_path / "b" / "levels.h5.parts"
    (parts / ".sample_0000002.half-written.npz").write_bytes(b"garbage")  # a write cut off mid-way
    assert sorted(p.name for p in parts.glob("sample_*")) == ["sample_0000000.npz"]
    capsys.readouterr()
    resumed = generate(LEVELS, tmp_path / "b", progress=True)
    bars = capsys.readouterr().err
    # the bar starts at the sample done before, and the merge has its own
    assert re.search(r"multilevel levels:\s+33%.*\| 1/3 ", bars) and " 0/" not in bars.split("merging")[0]
    assert re.search(r"merging levels.h5: 100%.*\| 3/3 ", bars)
    a, _ = read(full)
    b, _ = read(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key  # bit-identical
    assert not parts.exists()


def test_a_second_generator_waits_for_the_first(tmp_path, monkeypatch):
    """Two runs on one dataset take turns: the second waits, then reuses the finished file."""
    import io
    import sys
    import threading

    from fem_ms.data.store import generation_lock

    held, waiting, released = threading.Event(), threading.Event(), threading.Event()

    class Stderr(io.StringIO):  # tells the first run when the second has started to wait
        def write(self, text):
            if "another process is generating" in text:
                waiting.set()
            return super().write(text)

    monkeypatch.setattr(sys, "stderr", Stderr())

    def first_run():  # another process generating levels.h5 (flock conflicts across open files)
        with generation_lock(tmp_path / "levels.h5"):
            held.set()
            waiting.wait(60)
            released.set()  # still holding the lock: generate cannot go on before this

    other = threading.Thread(target=first_run)
    other.start()
    held.wait(60)
    path = generate(LEVELS, tmp_path, progress=False)
    assert waiting.is_set() and released.is_set()
    assert read(path)[0]["level_16/u"].shape == (3, 17, 17)
    other.join()


def test_refuses_other_config_unless_overwrite(tmp_path):
    generate(LEVELS, tmp_path, progress=False)
    other = MultilevelConfig(name="levels", samples=2, levels=(4, 8))
    with pytest.raises(FileExistsError, match="different config"):
        generate(other, tmp_path, progress=False)
    path = generate(other, tmp_path, progress=False, overwrite=True)
    assert read(path)[0]["level_8/u"].shape == (2, 9, 9)


def test_multilevel_levels_share_their_input(tmp_path):
    data, _ = read(generate(LEVELS, tmp_path, progress=False))
    DatasetFile(tmp_path / "levels.h5").verify()
    fine_k, fine_f = data["level_16/kappa"], data["level_16/f"]
    for n in (4, 8):
        r = 16 // n
        gm = np.exp(np.log(fine_k).reshape(3, n, r, n, r).mean(axis=(2, 4)))
        np.testing.assert_allclose(data[f"level_{n}/kappa"], gm, rtol=1e-12)
        np.testing.assert_array_equal(data[f"level_{n}/f"], fine_f[:, ::r, ::r])
    u = data["level_16/u"]
    assert np.all(u[:, 0, :] == 0) and np.all(u[:, :, -1] == 0)  # Dirichlet boundary
    # coarse solutions approximate the fine one: errors at the shared vertices fall with level
    err = [np.abs(data[f"level_{n}/u"] - u[:, ::16 // n, ::16 // n]).max() for n in (4, 8)]
    assert err[1] < err[0]


def test_leftover_temporaries_are_removed(tmp_path):
    """What killed merges and shard writes left is removed by the next run on that dataset,
    and nothing else is."""
    assert generate(LEVELS, tmp_path, progress=False, max_new_samples=1) is None
    ours = [tmp_path / ".levels.h5.k2_8xq0a.h5", tmp_path / "levels.h5.parts" / ".sample_0000001.abc.npz",
            tmp_path / "levels.h5.parts" / ".config.json.x1y2z3w4", tmp_path / ".levels.xdmf.ab_4cd9z"]
    others = [tmp_path / ".other.h5.k2_8xq0a.h5", tmp_path / ".levels.h5.lock", tmp_path / "levels.h5.notes",
              tmp_path / ".levels.h5.k2_8xq0a.h5.h5"]
    for p in ours + others:
        p.write_bytes(b"left behind")
    path = generate(LEVELS, tmp_path, progress=False)
    assert not any(p.exists() for p in ours) and all(p.exists() for p in others)
    DatasetFile(path).verify()


_KILLED_IN_MERGE = """
import json, sys, time
from pathlib import Path
import fem_ms.data.store as store
from fem_ms.data import generate, load_config

def stall(samples, **kwargs):  # the merge's progress loop: stop inside it until killed
    for s in samples:
        if s == 1:
            Path(sys.argv[3]).touch()
            time.sleep(600)
        yield s

store.tqdm = stall
generate(load_config(json.loads(sys.argv[1])), sys.argv[2], progress=False)
"""


def test_a_merge_killed_by_sigkill_leaves_nothing_behind(tmp_path):
    reference = generate(LEVELS, tmp_path / "reference", progress=False)
    out, ready = tmp_path / "killed", tmp_path / "in-merge"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_IN_MERGE, LEVELS.to_json(), str(out), str(ready)])
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the child never reached its merge"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    leftovers = list(out.glob(".levels.h5.*.h5"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # the half-written merge
    path = generate(LEVELS, out, progress=False)
    assert not list(out.glob(".levels.h5.*.h5")) and not (out / "levels.h5.parts").exists()
    a, _ = read(reference)
    b, _ = read(path)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bad, match", [
    ({"kind": "gmsfem_basis", "fine": 10, "coarse": 3}, "not a multiple"),
    ({"kind": "multilevel", "levels": [16, 8]}, "increase"),
    ({"kind": "multilevel", "levels": [6, 16]}, "divide the finest"),
    ({"kind": "multilevel", "problem": "stokes"}, "problem must be"),
    ({"kind": "multilevel", "samplez": 3}, "unknown key 'samplez' \\(did you mean 'samples'\\?\\)"),
    ({"kind": "nope"}, "kind must be one of"),
    ({"kind": "gmsfem_basis", "samples": 0}, "samples must be a positive integer"),
    ({"kind": "burgers", "samples": 10, "train_fraction": 0.9, "validation_fraction": 0.2}, "take 9 \\+ 2 of 10"),
    ({"kind": "burgers", "validation_fraction": -0.1}, "validation_fraction must be a number in \\[0, 1\\]"),
    ({"kind": "burgers", "validation_fraction": "0.1"}, "key 'validation_fraction' must be a number"),
    ({"kind": "multilevel", "energy": "high"}, "key 'energy' must be a number, got 'high'"),
    ({"kind": "multilevel", "name": 5}, "key 'name' must be a string, got 5"),
    ({"kind": "darcy_notch", "storage_dtype": "float16"}, "storage_dtype must be one of"),
])
def test_config_validation(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        load_config(bad)


def test_cli_generate(tmp_path, repo):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('kind = "multilevel"\nname = "tiny"\nsamples = 2\nlevels = [4, 8]\n')
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "generate", str(cfg), "--out-dir", str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    assert "wrote" in out and (tmp_path / "tiny.h5").is_file()
    for example in (repo / "demos" / "configs").glob("*.toml"):
        load_config(example)


def test_darcy_notch_dataset(tmp_path):
    from fem_ms.data import DarcyNotchConfig

    cfg = DarcyNotchConfig(name="darcy", samples=2, mesh_size=0.08, grid=11)
    data, attrs = read(generate(cfg, tmp_path, progress=False))
    nodes = data["coordinates"].shape[0]
    assert data["pressure"].shape == (2, nodes) and data["pressure_grid"].shape == (2, 11, 11)
    b = data["boundary_nodes"]
    np.testing.assert_allclose(data["pressure"][:, b], data["boundary_values"], atol=1e-12)  # u = g
    # −0.1 Δu = −1 makes u subharmonic: its maximum is on the boundary
    assert np.all(data["pressure"].max(axis=1) <= data["boundary_values"].max(axis=1) + 1e-10)
    inside = data["grid_inside"]
    assert np.all(np.isnan(data["pressure_grid"][:, ~inside])) and np.all(np.isfinite(data["pressure_grid"][:, inside]))
    assert not inside[5, 1] and inside[5, 5]  # (0.5, 0.1) lies in the notch; (0.5, 0.5) inside
    assert "notched triangle" in attrs["mesh"]
    DatasetFile(tmp_path / "darcy.h5").verify()


def test_cylinder_flow_dataset(tmp_path):
    from fem_ms.data import CylinderFlowConfig

    cfg = CylinderFlowConfig(name="cyl", samples=1, meshes=(1,), dt=0.25, t_end=0.5, save_every=1)
    data, _ = read(generate(cfg, tmp_path, progress=False))
    DatasetFile(tmp_path / "cyl.h5").verify()
    xy, cells, edges = data["mesh_1/coordinates"], data["mesh_1/cells"], data["mesh_1/edges"]
    u = data["mesh_1/velocity"]
    assert u.shape == (1, 2, len(xy), 2) and data["mesh_1/pressure"].shape == (1, 2, len(xy))
    np.testing.assert_allclose(data["times"], [0.25, 0.5])
    assert len(edges) == len(xy) + len(cells)  # Euler: V − E + F = 0 for a domain with one hole
    on_cylinder = np.abs(np.linalg.norm(xy, axis=1) - 0.5) < 1e-6
    on_walls = np.abs(np.abs(xy[:, 1]) - 4) < 1e-9
    inlet = (np.abs(xy[:, 0] + 4) < 1e-9) & ~on_walls
    assert on_cylinder.sum() > 10 and np.abs(u[0, :, on_cylinder]).max() < 1e-10  # no slip
    np.testing.assert_allclose(u[0, :, on_walls], np.broadcast_to([1.0, 0.0], u[0, :, on_walls].shape), atol=1e-10)
    c = data["inflow_coefficients"][0]
    y = xy[inlet, 1]
    profile = 1 + sum(ck * np.sin((k + 1) * np.pi * (y + 4) / 8) for k, ck in enumerate(c))
    np.testing.assert_allclose(u[0, -1, inlet, 0], profile, atol=1e-10)


@pytest.mark.slow
def test_cylinder_sheds_vortices_at_the_right_frequency():
    """Re = 200 past the Hopf bifurcation: the wake oscillates with Strouhal number ≈ 0.2."""
    from pyop2.mpi import COMM_SELF

    from fem_ms.geometries import geo_file
    from fem_ms.meshes import mesh_from_geo
    from fem_ms.navier_stokes import CylinderFlow

    with geo_file("cylinder_M2.geo") as geo:
        flow = CylinderFlow(mesh_from_geo(geo, comm=COMM_SELF), t_end=60.0, save_every=1)
    times, u, _ = flow.run([0.1, -0.05, 0.02])
    probe = np.argmin(np.linalg.norm(flow.coordinates - [3.0, 0.0], axis=1))
    v = u[times > 30, probe, 1]
    t = times[times > 30]
    crossings = t[1:][(v[:-1] < 0) & (v[1:] >= 0)]
    strouhal = 1.0 / np.mean(np.diff(crossings))  # diameter 1, free stream 1
    assert 0.17 < strouhal < 0.26, strouhal
    assert np.ptp(v) > 0.5  # a developed street, not a steady wake


def test_basis_dataset_3d(tmp_path):
    # m = 3 fine cells per coarse cell: with m = 2 a corner's χ_i φ_j span one function only
    cfg = GMsFEMBasisConfig(name="basis3d", samples=1, dim=3, fine=6, coarse=2, n_basis=2)
    data, _ = read(generate(cfg, tmp_path, progress=False))
    assert data["full/kappa"].shape == (1, 1, 6, 6, 6)
    assert data["half/kappa"].shape == (1, 6, 6, 6, 3)
    assert data["quarter/kappa"].shape == (1, 12, 6, 3, 3)
    assert data["corner/kappa"].shape == (1, 8, 3, 3, 3)
    assert data["quarter/basis"].shape == (1, 12, 2, 7, 4, 4)
    assert np.all(data["corner/chi"][:, 0, 0, 0] == 1.0)
    DatasetFile(tmp_path / "basis3d.h5").verify()
    assert DatasetFile(tmp_path / "basis3d.h5").describe("basis", patch_kind="quarter")["axes"] == (
        "sample", "patch", "basis", "i", "j", "k")
