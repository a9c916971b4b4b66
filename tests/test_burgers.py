"""The Burgers solver (fem_ms.burgers) against the Cole–Hopf exact solution, and the dataset kind."""

import h5py
import numpy as np
import pytest

from fem_ms.burgers import BurgersSolver, cole_hopf_solution, grf_initial_condition
from fem_ms.data import BurgersConfig, generate, load_config

NU, T = 0.02, 0.5


def error(points, dt):
    solver = BurgersSolver(points, NU, dt)
    u = solver.solve(cole_hopf_solution(solver.x, 0.0, NU), T)
    return np.abs(u - cole_hopf_solution(solver.x, T, NU)).max()


def test_fourth_order_in_time():
    dts = [0.02, 0.01, 0.005]
    e = np.array([error(256, dt) for dt in dts])
    rates = np.log2(e[:-1] / e[1:])
    assert np.all(rates > 3.7), (e, rates)


def test_spectral_in_space():
    e = np.array([error(n, 1e-3) for n in (8, 16, 32, 64)])
    # geometric decay (the error ratio grows with each doubling) down to round-off
    assert np.all(e[:-1] / e[1:] > [100, 1000, 10000]), e
    assert e[-1] < 1e-12, e


def test_mean_conserved_and_energy_decays():
    rng = np.random.default_rng(3)
    u0 = grf_initial_condition(256, rng) + 0.3
    solver = BurgersSolver(256, 0.05, 1e-3)
    u = solver.solve(u0, 0.2)
    assert abs(u.mean() - u0.mean()) < 1e-12
    assert np.sum(u**2) < np.sum(u0**2)


def test_grf_covariance():
    rng = np.random.default_rng(0)
    u = np.array([grf_initial_condition(64, rng) for _ in range(4000)])
    k = np.arange(1, 33)
    var = 625.0 * ((2 * np.pi * k) ** 2 + 25.0) ** -2.0
    var[-1] /= 2  # Nyquist: cos only
    expected = 2 * var.sum()
    assert abs(u.mean()) < 0.02
    assert abs(u.var(axis=0).mean() / expected - 1) < 0.05
    np.testing.assert_allclose(u.mean(axis=1), 0.0, atol=1e-12)  # zero spatial mean


def test_bad_input():
    with pytest.raises(ValueError, match="even integer"):
        BurgersSolver(15, 0.1, 1e-3)
    with pytest.raises(ValueError, match="viscosity"):
        BurgersSolver(16, 0.0, 1e-3)
    solver = BurgersSolver(16, 0.1, 1e-3)
    with pytest.raises(ValueError, match="shape"):
        solver.solve(np.zeros(8), 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        solver.solve(np.full(16, np.nan), 0.1)
    with pytest.raises(ValueError, match="whole"):
        solver.solve(np.zeros(16), 0.10005)
    with pytest.raises(ValueError, match="points"):
        BurgersConfig(points=1023)
    with pytest.raises(ValueError, match="whole number"):
        BurgersConfig(t_end=1.0, dt=0.3)


def test_burgers_dataset(tmp_path):
    config = load_config({"kind": "burgers", "name": "b", "samples": 3, "points": 64, "t_end": 0.1,
                          "dt": 0.01, "train_fraction": 2 / 3})
    path = generate(config, tmp_path, progress=False)
    with h5py.File(path, "r") as fh:
        assert fh.attrs["kind"] == "burgers"
        u0, u, x = fh["u0"][()], fh["u"][()], fh["x"][()]
        assert list(fh["splits/train"][()]) == [0, 1] and list(fh["splits/test"][()]) == [2]
    assert u0.shape == u.shape == (3, 64)
    np.testing.assert_allclose(x, np.arange(64) / 64)
    solver = BurgersSolver(64, 0.1, 0.01)
    u0_2 = grf_initial_condition(64, np.random.default_rng(config.kappa_seed(2)))
    np.testing.assert_array_equal(u0[2], u0_2)
    np.testing.assert_allclose(u[2], solver.solve(u0_2, 0.1), rtol=1e-12, atol=1e-14)
    from fem_ms_torch.data import BurgersDataset

    item = BurgersDataset(path, split="test")[0]
    np.testing.assert_allclose(item["u0"].numpy()[0], u0[2], rtol=1e-6)
    assert item["u"].shape == (1, 64)
