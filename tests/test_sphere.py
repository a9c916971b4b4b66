"""The spherical shallow water dataset (torch-harmonics' solver through the plugin's sampler):
deterministic per seed, resumable, the same on two ranks as on one, and the solution conserves
mass on every stored grid."""

import numpy as np
import pytest
import torch

from fem_ms.data import DatasetFile, ShallowWaterSphereConfig, generate
from fem_ms_torch.sphere import integrate, random_state, shallow_water_solver

CONFIG = ShallowWaterSphereConfig(name="sw", samples=4, grids=(12, 24), lead_time=3600.0, dt=600.0,
                                  train_fraction=0.5)


def read_all(path):
    data = DatasetFile(path, "shallow_water_sphere")
    data.verify()
    return {(field, n): data.read(field, grid=n) for n in data.members() for field in ("state0", "state")}


def test_same_seed_same_dataset_and_an_interrupted_run_resumes_to_it(tmp_path):
    whole = read_all(generate(CONFIG, tmp_path / "a", progress=False))
    assert generate(CONFIG, tmp_path / "b", progress=False, max_new_samples=1) is None  # "killed" after a sample
    resumed = read_all(generate(CONFIG, tmp_path / "b", progress=False))
    assert sorted(whole) == sorted(resumed) and sorted({n for _, n in whole}) == [12, 24]
    for key, values in whole.items():
        np.testing.assert_array_equal(resumed[key], values, err_msg=str(key))
    other = read_all(generate(ShallowWaterSphereConfig(**{**CONFIG.__dict__, "seed": 1}), tmp_path / "c",
                              progress=False))
    assert not np.allclose(other["state0", 12], whole["state0", 12])
    assert DatasetFile(tmp_path / "a" / "sw.h5").read("ic_seed").tolist() == [0, 2, 4, 6]


@pytest.mark.parallel(nprocs=2)
def test_two_ranks_equal_one_rank():
    import shutil
    import tempfile

    from pyop2.mpi import COMM_SELF, COMM_WORLD

    root = COMM_WORLD.bcast(tempfile.mkdtemp(prefix="fem-ms-sw-") if COMM_WORLD.rank == 0 else None)
    try:
        two = generate(CONFIG, f"{root}/two", progress=False)
        if COMM_WORLD.rank == 0:
            one = read_all(generate(CONFIG, f"{root}/one", comm=COMM_SELF, progress=False))
            spread = read_all(two)
            assert sorted(one) == sorted(spread) and one
            for key, values in one.items():
                np.testing.assert_array_equal(spread[key], values, err_msg=str(key))
        COMM_WORLD.barrier()
    finally:
        COMM_WORLD.barrier()
        if COMM_WORLD.rank == 0:
            shutil.rmtree(root)


def test_the_random_state_is_seeded_without_touching_the_global_generator():
    solver = shallow_water_solver(12, 600.0)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = random_state(solver, 5), random_state(solver, 5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, b) and not torch.equal(a, random_state(solver, 6))
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        random_state(solver, -1)


def test_mass_is_conserved_and_the_same_on_both_grids(tmp_path):
    """∫h dΩ of the geopotential anomaly: the solver's l = 0 coefficient of h, which no term of the
    equations changes, so it agrees at t = 0 and t = lead_time and on both grids (Clenshaw–Curtis
    integrates the band-limited field exactly) to rounding, while the state itself has moved."""
    path = generate(CONFIG, tmp_path, progress=False)
    data = DatasetFile(path)
    masses = []
    for n in (12, 24):
        weights = data.read("quadrature_weights", grid=n)
        assert weights.sum() == pytest.approx(2.0)  # ∫ d(cos θ) over [−1, 1]
        state0, state = data.read("state0", grid=n), data.read("state", grid=n)
        assert np.isfinite(state).all()
        m0, m1 = integrate(state0[:, 0], weights), integrate(state[:, 0], weights)
        np.testing.assert_allclose(m1, m0, rtol=0, atol=1e-12)
        masses.append(m0)
        change = np.linalg.norm(state - state0, axis=(2, 3)) / np.linalg.norm(state0, axis=(2, 3))
        assert (change > 0.05).all(), change  # the hour of dynamics is not a no-op
    np.testing.assert_allclose(masses[0], masses[1], rtol=0, atol=1e-12)
    assert np.ptp(masses[0]) > 1e-3  # the samples differ in mass: the check is not of a constant


def test_the_grids_are_evaluations_of_one_solution(tmp_path):
    """The coarse grid's values are the fine solution's spectral series at the coarse points:
    transforming the fine grid's field and evaluating it on the coarse grid gives them back."""
    from torch_harmonics import InverseRealSHT, RealSHT

    data = DatasetFile(generate(CONFIG, tmp_path, progress=False))
    fine, coarse = torch.from_numpy(data.read("state", grid=24)), torch.from_numpy(data.read("state", grid=12))
    lmax = 8  # ⌈24/3⌉: the solver's truncation
    coefficients = RealSHT(24, 48, lmax=lmax, mmax=lmax, grid="equiangular", csphase=False).double()(fine)
    back = InverseRealSHT(12, 24, lmax=lmax, mmax=lmax, grid="equiangular", csphase=False).double()(coefficients)
    np.testing.assert_allclose(back.numpy(), coarse.numpy(), atol=1e-10 * float(coarse.abs().max()))


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match=r"grids must lie within a factor 3, got \[12, 48\]"):
        ShallowWaterSphereConfig(grids=(12, 48))
    with pytest.raises(ValueError, match="lead_time/dt = 2.5 must be a whole"):
        ShallowWaterSphereConfig(lead_time=1500.0, dt=600.0)
    with pytest.raises(ValueError, match="mach must be positive"):
        ShallowWaterSphereConfig(mach=0.0)
    with pytest.raises(ValueError, match="nlat must be an integer >= 6, got 4"):
        shallow_water_solver(4, 600.0)


def test_a_kind_without_a_sampler_is_named():
    from fem_ms.data.generate import sampler_class
    from fem_ms_torch.sphere import ShallowWaterSphereSampler

    assert sampler_class("shallow_water_sphere") is ShallowWaterSphereSampler  # through the entry point
    with pytest.raises(ValueError, match="no sampler for dataset kind 'nope'"):
        sampler_class("nope")
