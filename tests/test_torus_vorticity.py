"""The periodic vorticity solver (fem_ms.torus_vorticity): exact decay, budgets, order, dealiasing, laws."""

import numpy as np
import pytest

from fem_ms.torus_vorticity import (
    downsample,
    grid,
    mlmc_forcing,
    nonlinear_term,
    periodic_grf,
    random_forcing,
    random_vorticity,
    solve_vorticity,
)

from .conftest import observed_rates


def band_limited(w):
    """w with only the modes the 2/3 rule keeps (max |k_i| < n/3)."""
    n = w.shape[-1]
    kx = np.fft.fftfreq(n, 1.0 / n)[:, None]
    ky = np.fft.rfftfreq(n, 1.0 / n)[None, :]
    keep = (np.abs(kx) < n / 3) & (ky < n / 3)
    return np.fft.irfft2(np.fft.rfft2(w) * keep, s=w.shape[-2:])


def interpolate(w, m):
    """Spectral (zero-padding) interpolation of a field whose modes are below n/2 onto m > n points."""
    n = w.shape[-1]
    w_hat = np.fft.fft2(w)
    padded = np.zeros((m, m), dtype=complex)
    k = np.fft.fftfreq(n, 1.0 / n).astype(int)
    padded[np.ix_(k % m, k % m)] = w_hat
    return np.fft.ifft2(padded).real * (m / n) ** 2


def gradient_norm2(w, length=1.0):
    """Mean over the grid of |∇w|² (spectral derivatives)."""
    n = w.shape[-1]
    k = 2 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)
    w_hat = np.fft.fft2(w)
    wx = np.fft.ifft2(1j * k[:, None] * w_hat).real
    wy = np.fft.ifft2(1j * k[None, :] * w_hat).real
    return np.mean(wx**2 + wy**2)


def stream_function(w, length=1.0):
    n = w.shape[-1]
    k = 2 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    k2[0, 0] = np.inf
    return np.fft.ifft2(np.fft.fft2(w) / k2).real


@pytest.mark.parametrize("length", [1.0, 2 * np.pi])
def test_taylor_green_decays_at_the_exact_rate(length):
    """Modes of one |k| are a steady Euler flow (u·∇w = 0): w decays as exp(−ν|k|²(2π/L)² t)."""
    X, Y = grid(32, length)
    s = 2 * np.pi / length
    w0 = np.cos(s * (X + 2 * Y)) + 0.5 * np.sin(s * (2 * X - Y)) + 0.3 * np.sin(s * 2 * X) * np.sin(s * Y)
    assert np.abs(nonlinear_term(w0, length)).max() < 1e-12 * np.abs(w0).max() * s**2
    nu, dt, times = 0.01, 1e-3, [0.0, 0.5, 1.0]
    w = solve_vorticity(w0, None, nu, times, dt=dt, length=length)
    rate = nu * 5 * s**2
    for t, wt in zip(times, w):
        exact = w0 * np.exp(-rate * t)
        assert np.abs(wt - exact).max() < 1e-6 * np.abs(w0).max(), (t, np.abs(wt - exact).max())
        # and exactly (to round-off) the Crank–Nicolson amplification factor, step by step
        crank_nicolson = w0 * ((1 - rate * dt / 2) / (1 + rate * dt / 2)) ** round(t / dt)
        assert np.abs(wt - crank_nicolson).max() < 1e-12, (t, np.abs(wt - crank_nicolson).max())


def test_second_order_in_time():
    w0 = random_vorticity(32, 0)
    f = mlmc_forcing(32)

    def final(dt):
        return solve_vorticity(w0, f, 0.01, [1.0], dt)[0]

    reference = final(1 / 1280)
    errors = [np.abs(final(dt) - reference).max() for dt in (1 / 20, 1 / 40, 1 / 80)]
    rates = observed_rates(errors)
    assert np.all(rates > 1.85) and np.all(rates < 2.3), (errors, rates)


def test_enstrophy_and_energy_budgets():
    """d/dt ½‖w‖² = −ν‖∇w‖² + ⟨f, w⟩ and d/dt ½‖u‖² = −ν‖w‖² + ⟨f, ψ⟩ on a random field,
    by a central difference of the computed solution (error O(h²) + O(dt²))."""
    n, nu, t0, h = 32, 0.005, 0.5, 0.01
    w0 = band_limited(random_vorticity(n, 4))
    f = mlmc_forcing(n)
    w = solve_vorticity(w0, f, nu, [t0 - h, t0, t0 + h], dt=1e-3)
    enstrophy = 0.5 * np.mean(w**2, axis=(1, 2))
    energy = np.array([0.5 * gradient_norm2(stream_function(wi)) for wi in w])
    rate_enstrophy = (enstrophy[2] - enstrophy[0]) / (2 * h)
    rate_energy = (energy[2] - energy[0]) / (2 * h)
    wm = w[1]
    budget_enstrophy = -nu * gradient_norm2(wm) + np.mean(f * wm)
    budget_energy = -nu * np.mean(wm**2) + np.mean(f * stream_function(wm))
    scale_z = nu * gradient_norm2(wm) + abs(np.mean(f * wm))
    scale_e = nu * np.mean(wm**2) + abs(np.mean(f * stream_function(wm)))
    assert abs(rate_enstrophy - budget_enstrophy) < 1e-3 * scale_z, (rate_enstrophy, budget_enstrophy)
    assert abs(rate_energy - budget_energy) < 1e-3 * scale_e, (rate_energy, budget_energy)


def test_dealiased_product_is_exact_and_conservative():
    """For a field inside the 2/3 band the truncated product equals the exact one (computed on a
    grid twice as fine, where nothing aliases) and conserves energy and enstrophy."""
    n = 24
    w = band_limited(random_vorticity(n, 7))
    coarse = nonlinear_term(w)
    fine = nonlinear_term(interpolate(w, 2 * n))
    exact = band_limited(fine[::2, ::2])  # the fine product's modes below n/3, on the coarse points
    assert np.abs(coarse - exact).max() < 1e-12 * np.abs(fine).max()
    assert abs(np.mean(coarse * w)) < 1e-14 * np.abs(coarse).max() * np.abs(w).max()
    assert abs(np.mean(coarse * stream_function(w))) < 1e-14 * np.abs(coarse).max() * np.abs(w).max()
    # a field with every mode: its product keeps nothing at or above the 2/3 cut
    full = nonlinear_term(random_vorticity(n, 8))
    assert np.allclose(band_limited(full), full, atol=1e-13)


def test_no_aliasing_growth_of_enstrophy():
    """Nearly inviscid and unforced, the enstrophy of a band-limited start must not grow (aliasing
    errors feed spurious energy into the top modes and show as growth)."""
    w0 = 5 * band_limited(random_vorticity(32, 9))
    w = solve_vorticity(w0, None, 1e-6, np.arange(0.0, 5.01, 0.5), dt=2e-3)
    enstrophy = np.mean(w**2, axis=(1, 2))
    assert np.all(np.diff(enstrophy) <= 1e-9 * enstrophy[0]), enstrophy / enstrophy[0]
    assert enstrophy[-1] > 0.5 * enstrophy[0]  # a weak viscosity, not a numerical damping, at work


@pytest.mark.parametrize("draw,alpha,tau,length,sigma", [
    (lambda n, s: random_vorticity(n, s), 2.5, 7.0, 1.0, 7.0**1.5),
    (lambda n, s: random_forcing(n, s), 4.0, 3.0, 2 * np.pi, 1.0),
])
def test_random_fields_follow_their_law(draw, alpha, tau, length, sigma):
    n, samples = 16, 3000
    np.testing.assert_array_equal(draw(n, 3), draw(n, 3))
    assert not np.allclose(draw(n, 3), draw(n, 4))
    w = np.stack([draw(n, s) for s in range(samples)])
    assert np.abs(w.mean(axis=(1, 2))).max() < 1e-12  # zero-mean mode
    k = np.fft.fftfreq(n, 1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    variance = 2 * sigma**2 * (4 * np.pi**2 * k2 / length**2 + tau**2) ** (-alpha)
    variance[0, 0] = 0.0
    # the modes k and −k of a real field share one coefficient: E|ŵ_k|² = the mode variance
    measured = np.mean(np.abs(np.fft.fft2(w) / n**2) ** 2, axis=0)
    low = (k2 > 0) & (k2 <= 4)
    assert np.all(np.abs(measured[low] / variance[low] - 1) < 0.1), measured[low] / variance[low]
    assert abs(w.var(axis=0).mean() / variance.sum() - 1) < 0.05


def test_gpo_forcing_map_is_nonlinear():
    """At the LoGoS-GPO paper's ν = 0.025, T = 10 the advection changes w(T) by more than 20 % of
    the linear (Stokes) response: the learned map is not a linear filter."""
    n, L, nu, T = 32, 2 * np.pi, 0.025, 10.0
    f, w0 = random_forcing(n, 1), random_forcing(n, 2)
    w = solve_vorticity(w0, f, nu, [T], dt=1e-2, length=L)[0]
    k = np.fft.fftfreq(n, 1.0 / n)
    a = -nu * (k[:, None] ** 2 + k[None, :] ** 2)
    a[0, 0] = -1.0  # both fields have zero mean
    stokes = np.fft.ifft2(np.fft.fft2(w0) * np.exp(a * T) + np.fft.fft2(f) * (np.exp(a * T) - 1) / a).real
    assert np.linalg.norm(w - stokes) > 0.2 * np.linalg.norm(w)


def test_downsample_subsamples():
    w = random_vorticity(32, 1)
    coarse = downsample(w, 8)
    np.testing.assert_array_equal(coarse, w[::4, ::4])
    batch = np.stack([w, 2 * w])
    np.testing.assert_array_equal(downsample(batch, 16)[1], 2 * w[::2, ::2])
    np.testing.assert_array_equal(downsample(w, 32), w)


def test_batch_equals_single_solves():
    w0 = np.stack([random_vorticity(16, s) for s in range(3)])
    f = mlmc_forcing(16)
    batch = solve_vorticity(w0, f, 1e-3, [0.5, 1.0], dt=0.01)
    assert batch.shape == (2, 3, 16, 16)
    for i in range(3):
        np.testing.assert_allclose(batch[:, i], solve_vorticity(w0[i], f, 1e-3, [0.5, 1.0], dt=0.01), atol=1e-13)


@pytest.mark.parametrize("call,match", [
    (lambda: random_vorticity(15, 0), "n must be an even integer"),
    (lambda: random_vorticity(16, -1), "seed"),
    (lambda: random_vorticity(16, 0, alpha=-1.0), "alpha"),
    (lambda: random_forcing(16, 0, sigma=0.0), "sigma"),
    (lambda: mlmc_forcing(2), "n must be"),
    (lambda: periodic_grf(16, 0, 2.0, 3.0, length=np.nan), "length"),
    (lambda: solve_vorticity(np.zeros((8, 8)), None, 0.0, [1.0], 0.1), "nu"),
    (lambda: solve_vorticity(np.zeros((8, 8)), None, 1e-3, [1.0], -0.1), "dt"),
    (lambda: solve_vorticity(np.zeros((8, 8)), None, 1e-3, [0.25], 0.1), "whole multiples"),
    (lambda: solve_vorticity(np.zeros((8, 8)), None, 1e-3, [1.0, 0.5], 0.1), "increasing"),
    (lambda: solve_vorticity(np.zeros((8, 8)), None, 1e-3, [], 0.1), "non-empty"),
    (lambda: solve_vorticity(np.zeros((8, 6)), None, 1e-3, [1.0], 0.1), "shape"),
    (lambda: solve_vorticity(np.full((8, 8), np.nan), None, 1e-3, [1.0], 0.1), "non-finite"),
    (lambda: solve_vorticity(np.zeros((8, 8)), np.zeros((16, 16)), 1e-3, [1.0], 0.1), "forcing"),
    (lambda: solve_vorticity(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)), 1e-3, [1.0], 0.1), "broadcast"),
    (lambda: solve_vorticity(np.zeros((8, 8)), None, 1e-3, [1.0], 0.1, length=0.0), "length"),
    (lambda: downsample(np.zeros((8, 8)), 3), "divisor"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_complex_input_is_a_type_error():
    with pytest.raises(TypeError, match="real array"):
        solve_vorticity(np.zeros((8, 8), dtype=complex), None, 1e-3, [1.0], 0.1)


def test_blow_up_names_step_and_time():
    w0 = 200 * random_vorticity(16, 0)
    with pytest.raises(FloatingPointError, match=r"step \d+ \(t = "):
        solve_vorticity(w0, None, 1e-4, [50.0], dt=0.5)


def test_one_seed_is_one_field_at_every_resolution():
    """The draws of one seed at 32² and 64² have the same Fourier modes below 16 (the coarse
    field is the fine one without its high modes), so solves at two resolutions can be compared."""
    coarse, fine = random_vorticity(32, 5), random_vorticity(64, 5)
    k = np.fft.fftfreq(32, 1.0 / 32).astype(int)
    inner = k[np.abs(k) < 16]
    c = np.fft.fft2(coarse)[np.ix_(inner % 32, inner % 32)] / 32**2
    f = np.fft.fft2(fine)[np.ix_(inner % 64, inner % 64)] / 64**2
    np.testing.assert_allclose(c, f, rtol=0, atol=1e-14)
    # subsampling the fine draw differs only by its modes 16..31 aliased onto the coarse grid (k^-5 spectrum)
    assert np.linalg.norm(downsample(fine, 32) - coarse) < 0.03 * np.linalg.norm(coarse)
