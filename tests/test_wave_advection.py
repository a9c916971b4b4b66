"""The exact wave-advection profiles (fem_ms.wave_advection) and the ``wave_advection`` dataset kind."""

import math

import h5py
import numpy as np
import pytest

from fem_ms.data import WaveAdvectionConfig, generate, load_config
from fem_ms.wave_advection import advected_wave, random_wave_parameters, square_parabolic_wave, wave_mass

# no square edge c ± ω/2 on a grid point j/200 (where rounding would decide the indicator)
WAVE = dict(center=0.4321, width=0.37, height=1.6, sharpness=10.0)


def test_profile_is_square_plus_bump():
    x = np.array([0.4321, 0.4321 + 0.1, 0.4321 + 0.17, 0.4321 - 0.18, 0.4321 - 0.19, 0.9])
    u = square_parabolic_wave(x, **WAVE)
    bump = np.sqrt(np.maximum(1.6**2 - (10 * (x - 0.4321)) ** 2, 0))
    np.testing.assert_allclose(u[:4], 1.6 + bump[:4])  # |x − c| ≤ ω/2 = 0.185: square + bump
    assert u[3] == pytest.approx(1.6) and u[2] == pytest.approx(1.6)  # beyond the bump's half-width 0.16
    assert u[4] == 0.0 and u[5] == 0.0  # outside the square


def test_full_period_and_grid_shifts_are_exact():
    x = np.arange(200) / 200
    u0 = square_parabolic_wave(x, **WAVE)
    np.testing.assert_allclose(advected_wave(x, 1.0, 1.0, **WAVE), u0, atol=1e-12)  # a full period
    np.testing.assert_allclose(advected_wave(x, 2.0, 1.5, **WAVE), u0, atol=1e-12)  # three periods
    # a shift by k grid spacings is the grid values rolled by k (here 0.5 = 100/200)
    np.testing.assert_allclose(advected_wave(x, 0.5, 1.0, **WAVE), np.roll(u0, 100), atol=1e-12)


def test_sub_grid_shift_evaluates_the_profile():
    x = np.arange(200) / 200
    shift = 0.5 + 0.3 / 200  # not a whole number of grid spacings
    u = advected_wave(x, 0.5, 2 * shift, **WAVE)
    np.testing.assert_array_equal(u, square_parabolic_wave(x - shift, **WAVE))
    # the jumps stay jumps (an interpolation would put values between 0 and h next to them)
    square_part = u - np.sqrt(np.maximum(1.6**2 - (10 * (np.mod(x - shift - 0.4321 + 0.5, 1) - 0.5)) ** 2, 0))
    assert set(np.round(square_part, 12)) <= {0.0, 1.6}


def test_wrapping_across_the_period():
    # a wave centred near 0 wraps: its right half at small x, its left half near 1
    x = np.array([0.05, 0.95, 0.5])
    u = square_parabolic_wave(x, center=0.02, width=0.3, height=1.0, sharpness=10.0)
    assert u[0] == pytest.approx(1.0 + math.sqrt(1 - 0.09))
    assert u[1] == pytest.approx(1.0 + math.sqrt(1 - 0.49))
    assert u[2] == 0.0


@pytest.mark.parametrize("t", [0.0, 0.5, 0.731])
def test_mass_is_conserved(t):
    x = (np.arange(200_000) + 0.5) / 200_000  # midpoint rule: O(1/n) at the jumps
    expected = wave_mass(WAVE["width"], WAVE["height"], WAVE["sharpness"])
    assert advected_wave(x, t, 1.0, **WAVE).mean() == pytest.approx(expected, rel=2e-5)


def test_random_parameters_in_range_and_deterministic():
    draws = np.array([random_wave_parameters(np.random.default_rng(s)) for s in range(500)])
    assert np.all((draws >= [0.3, 0.3, 1.0]) & (draws <= [0.7, 0.6, 2.0]))
    assert np.all(draws.max(0) - draws.min(0) > [0.35, 0.25, 0.9])  # the ranges are filled
    assert random_wave_parameters(np.random.default_rng(7)) == random_wave_parameters(np.random.default_rng(7))


def test_bad_input():
    with pytest.raises(ValueError, match="width"):
        square_parabolic_wave(0.5, 0.5, 1.2, 1.0)
    with pytest.raises(ValueError, match="height"):
        square_parabolic_wave(0.5, 0.5, 0.3, -1.0)
    with pytest.raises(ValueError, match="sharpness"):
        square_parabolic_wave(0.5, 0.5, 0.3, 2.0, sharpness=3.0)
    with pytest.raises(ValueError, match="center"):
        square_parabolic_wave(0.5, float("nan"), 0.3, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        square_parabolic_wave([0.1, np.inf], 0.5, 0.3, 1.0)
    with pytest.raises(ValueError, match="t must be non-negative"):
        advected_wave(0.5, -1.0, 1.0, 0.5, 0.3, 1.0)
    with pytest.raises(TypeError, match="Generator"):
        random_wave_parameters(3)
    with pytest.raises(ValueError, match="center range"):
        random_wave_parameters(np.random.default_rng(0), center=(0.7, 0.3))
    with pytest.raises(ValueError, match="sharpness"):
        WaveAdvectionConfig(sharpness=4.0)
    with pytest.raises(ValueError, match="width must be a range"):
        WaveAdvectionConfig(width=(0.3, 1.5))
    with pytest.raises(ValueError, match="t_end"):
        WaveAdvectionConfig(t_end=-0.5)
    with pytest.raises(TypeError, match="center"):
        load_config({"kind": "wave_advection", "center": "middle"})


def test_wave_advection_dataset_is_exact_deterministic_and_resumable(tmp_path):
    config = load_config({"kind": "wave_advection", "name": "w", "samples": 4, "points": 200,
                          "train_fraction": 0.75})
    assert generate(config, tmp_path / "a", progress=False, max_new_samples=2) is None  # interrupted
    path = generate(config, tmp_path / "a", progress=False)  # resumed
    again = generate(config, tmp_path / "b", progress=False)
    with h5py.File(path, "r") as fh, h5py.File(again, "r") as gh:
        assert fh.attrs["kind"] == "wave_advection"
        u0, u, params, x = fh["u0"][()], fh["u"][()], fh["parameters"][()], fh["x"][()]
        assert list(fh["splits/train"][()]) == [0, 1, 2] and list(fh["splits/test"][()]) == [3]
        for name in ("u0", "u", "parameters"):
            np.testing.assert_array_equal(gh[name][()], fh[name][()])
    assert u0.shape == u.shape == (4, 200) and params.shape == (4, 3)
    np.testing.assert_allclose(x, np.arange(200) / 200)
    c, w, h = random_wave_parameters(np.random.default_rng(config.kappa_seed(3)))
    np.testing.assert_array_equal(params[3], [c, w, h])
    np.testing.assert_array_equal(u0[3], square_parabolic_wave(x, c, w, h))
    # T = 0.5 at unit speed is 100 grid spacings: the output is the input rolled
    np.testing.assert_allclose(u, np.roll(u0, 100, axis=1), atol=1e-12)
    assert len({tuple(p) for p in params}) == 4


@pytest.mark.parallel(nprocs=2)
def test_two_ranks_equal_one_rank():
    import shutil
    import tempfile

    from pyop2.mpi import COMM_SELF, COMM_WORLD

    config = WaveAdvectionConfig(name="w2", samples=5, points=64, train_fraction=0.6)
    root = COMM_WORLD.bcast(tempfile.mkdtemp(prefix="fem-ms-wave-") if COMM_WORLD.rank == 0 else None)
    try:
        two = generate(config, f"{root}/two", progress=False)
        if COMM_WORLD.rank == 0:
            one = generate(config, f"{root}/one", comm=COMM_SELF, progress=False)
            with h5py.File(one, "r") as a, h5py.File(two, "r") as b:
                for name in ("u0", "u", "parameters", "x"):
                    np.testing.assert_array_equal(a[name][()], b[name][()])
        COMM_WORLD.barrier()
    finally:
        COMM_WORLD.barrier()
        if COMM_WORLD.rank == 0:
            shutil.rmtree(root)
