"""Dataset generation end to end: schema, determinism, resume, refusal, level relations."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig, generate, load_config

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
    assert np.all(data["kappa_seed"] == [0, 2, 4])
    # the canonical vertex sits at the low end of the boundary axes: χ = 1 there
    assert np.all(data["corner/chi"][:, 0, 0] == 1.0)
    assert np.all(data["half/chi"][:, m, 0] == 1.0)


def test_deterministic_and_resumable(tmp_path):
    full = generate(LEVELS, tmp_path / "a", progress=False)
    assert generate(LEVELS, tmp_path / "b", progress=False, max_new_samples=1) is None  # "killed"
    parts = tmp_path / "b" / "levels.h5.parts"
    (parts / ".sample_0000002.half-written.npz").write_bytes(b"garbage")  # a write cut off mid-way
    assert sorted(p.name for p in parts.glob("sample_*")) == ["sample_0000000.npz"]
    resumed = generate(LEVELS, tmp_path / "b", progress=False)
    a, _ = read(full)
    b, _ = read(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key  # bit-identical
    assert not parts.exists()


def test_refuses_other_config_unless_overwrite(tmp_path):
    generate(LEVELS, tmp_path, progress=False)
    other = MultilevelConfig(name="levels", samples=2, levels=(4, 8))
    with pytest.raises(FileExistsError, match="different config"):
        generate(other, tmp_path, progress=False)
    path = generate(other, tmp_path, progress=False, overwrite=True)
    assert read(path)[0]["level_8/u"].shape == (2, 9, 9)


def test_multilevel_levels_share_their_input(tmp_path):
    data, _ = read(generate(LEVELS, tmp_path, progress=False))
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


@pytest.mark.parametrize("bad, match", [
    ({"kind": "gmsfem_basis", "fine": 10, "coarse": 3}, "not a multiple"),
    ({"kind": "multilevel", "levels": [16, 8]}, "increase"),
    ({"kind": "multilevel", "levels": [6, 16]}, "divide the finest"),
    ({"kind": "multilevel", "problem": "stokes"}, "problem must be"),
    ({"kind": "multilevel", "samplez": 3}, "unknown keys"),
    ({"kind": "nope"}, "kind must be one of"),
    ({"kind": "gmsfem_basis", "samples": 0}, "samples must be a positive integer"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        load_config(bad)


def test_cli_generate(tmp_path, repo):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('kind = "multilevel"\nname = "tiny"\nsamples = 2\nlevels = [4, 8]\n')
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "generate", str(cfg), "--out-dir", str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    assert "wrote" in out and (tmp_path / "tiny.h5").is_file()
    for example in (repo / "demos" / "configs").glob("*.toml"):
        load_config(example)
