"""2D incompressible Navier–Stokes in vorticity form on a periodic square, pseudo-spectrally.

    ∂_t w + u·∇w = ν Δw + f,   u = (∂_y ψ, −∂_x ψ),   −Δψ = w,   (x, y) ∈ [0, L)² periodic,

the equation of the FNO / MLMC Navier–Stokes benchmark (Li et al. 2021; the MLMC paper's App. B.3,
L = 1) and of the LoGoS-GPO paper's Navier–Stokes case (L = 2π). Fields are arrays ``w[..., i, j]``
at ``(x_i, y_j) = (i L/n, j L/n)`` (axis −2 is x, axis −1 is y), any leading axes being a batch.

Numerics (:func:`solve_vorticity`): Fourier pseudo-spectral in space with the 2/3 rule (the
product u·∇w keeps the wavenumbers ``max(|k_x|, |k_y|) < n/3`` only, so a band-limited field's
product is computed without aliasing); Crank–Nicolson for ν Δw (and the forcing, which is
constant in time), second-order Adams–Bashforth for u·∇w (CNAB2), started by one Heun step
(Crank–Nicolson predictor–corrector). Li et al.'s generator treats u·∇w by forward Euler and is
first order in time; CNAB2 costs the same one evaluation of u·∇w per step and is second order.

Written here in numpy (a few dozen lines) because the scheme is short and no installed library
offers a periodic 2D vorticity integrator that is torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

__all__ = ["random_vorticity", "mlmc_forcing", "random_forcing", "periodic_grf", "solve_vorticity",
           "downsample", "nonlinear_term", "grid"]


def _check_n(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4 or n % 2:
        raise ValueError(f"{name}: n must be an even integer >= 4, got {n!r}")
    return int(n)


def _check_positive(name: str, label: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not np.isfinite(value) or not value > 0:
        raise ValueError(f"{name}: {label} must be a positive finite number, got {value!r}")
    return float(value)


def _check_seed(name: str, seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def grid(n: int, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates ``(X, Y)``, each (n, n), of the periodic grid ``(i L/n, j L/n)`` (indexing "ij")."""
    n = _check_n("grid", n)
    length = _check_positive("grid", "length", length)
    x = np.arange(n) * (length / n)
    return np.meshgrid(x, x, indexing="ij")


def periodic_grf(n: int, seed: int, alpha: float, tau: float, length: float = 1.0,
                 sigma: float | None = None) -> np.ndarray:
    """A zero-mean Gaussian random field on the n×n periodic grid of [0, L)², as Li et al. draw them.

    This is the law of the ``GaussianRF`` generator released with the FNO (Li et al. 2021) that
    produced the Navier–Stokes data of both papers: each Fourier mode k ≠ 0 (k ∈ Z²) of the field
    has variance ``2 σ² (4π²|k|²/L² + τ²)^(−α)`` (a complex normal scaled by √2·σ·λ_k^{1/2}, of
    which the real part is kept), the k = 0 mode is zero. In operator form the covariance is
    ``2 σ² (−Δ + τ² I)^(−α)`` on [0, L)² with the L²-normalised Fourier basis of the unit-area
    square — i.e. the papers' "σ (−Δ + τ² I)^(−α)" written with σ for what the code squares,
    and the factor 2 of taking the real part. ``sigma`` defaults to Li et al.'s τ^(α − 1) (in 2D).

    Parameters
    ----------
    n : int
        Grid points per side (even).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same field.
    alpha, tau : float
        Smoothness and inverse length scale (α > 1 for a field with finite variance).
    length : float
        Side L of the periodic square.
    sigma : float, optional
        Amplitude; default τ^(α − 1).
    """
    n = _check_n("periodic_grf", n)
    seed = _check_seed("periodic_grf", seed)
    alpha = _check_positive("periodic_grf", "alpha", alpha)
    tau = _check_positive("periodic_grf", "tau", tau)
    length = _check_positive("periodic_grf", "length", length)
    sigma = tau ** (alpha - 1.0) if sigma is None else _check_positive("periodic_grf", "sigma", sigma)
    k = np.fft.fftfreq(n, 1.0 / n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    sqrt_eig = np.sqrt(2.0) * sigma * (4 * np.pi**2 * k2 / length**2 + tau**2) ** (-alpha / 2)
    sqrt_eig[0, 0] = 0.0
    xi = _nested_normals(n, seed)
    # ifft2's 1/n² is undone by n²: the grid values are the Fourier series Σ_k c_k e^{2πik·x/L}
    return np.fft.ifft2(n * n * sqrt_eig * (xi[0] + 1j * xi[1])).real


def _nested_normals(n: int, seed: int) -> np.ndarray:
    """Standard normals (2, n, n), one pair per wavenumber of the fftfreq layout, drawn shell by
    shell (``max(|k_x|, |k_y|)`` = 0, 1, 2, ...; within a shell by k_x, then k_y): every wavenumber
    below n/2 gets the same pair whatever n, so the fields of one seed at n and 2n share their
    modes below n/2 and a coarse draw is the fine one without its high modes (not Li et al.'s
    order, which draws the grid in memory order)."""
    k = np.fft.fftfreq(n, 1.0 / n).astype(np.int64)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    order = np.lexsort((ky.ravel(), kx.ravel(), np.maximum(np.abs(kx), np.abs(ky)).ravel()))
    draws = np.random.default_rng(seed).standard_normal((n * n, 2))
    xi = np.empty((2, n * n))
    xi[:, order] = draws.T
    return xi.reshape(2, n, n)


def random_vorticity(n: int, seed: int, alpha: float = 2.5, tau: float = 7.0) -> np.ndarray:
    """An initial vorticity w_0 on the n×n grid of the unit torus: the MLMC paper's (App. B.3) and
    Li et al.'s w_0 ~ N(0, 7^{3/2}(−Δ + 49 I)^{−2.5}), drawn by :func:`periodic_grf` (σ = τ^{α−1} =
    7^{3/2}; zero mean). The same ``seed`` gives the same field, and the same Fourier modes below
    n/2 at every ``n`` (so a 64² and a 128² draw of one seed are one field at two resolutions).
    """
    return periodic_grf(n, seed, alpha, tau, length=1.0)


def mlmc_forcing(n: int) -> np.ndarray:
    """The MLMC paper's (and Li et al.'s) forcing f = 0.1 (sin 2π(x + y) + cos 2π(x + y)) on the
    n×n grid x_i = i/n of the unit torus."""
    X, Y = grid(n)
    return 0.1 * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))


GPO_FORCING_ALPHA, GPO_FORCING_TAU, GPO_LENGTH, GPO_VISCOSITY = 4.0, 3.0, 2 * np.pi, 0.025


def random_forcing(n: int, seed: int, sigma: float = 1.0) -> np.ndarray:
    """The LoGoS-GPO paper's random forcing f' ~ N(0, (−Δ + 9 I)^{−4}) on the periodic square
    [0, 2π)² (their Sec. 4.4, zero mean), on the n×n grid (i 2π/n, j 2π/n).

    The paper gives the covariance operator without a prefactor and not the generator; this is
    :func:`periodic_grf` with α = 4, τ = 3, L = 2π and amplitude ``sigma`` (default 1, the
    operator as written): the mode e^{ik·x}, k ≠ 0, has variance ``2σ²(|k|² + 9)^(−4)``. With
    σ = 1 and the paper's ν = 0.025 the map f' → w(T = 10) is clearly nonlinear (w(10) differs
    from the Stokes response, without u·∇w, by more than 20 % in L²; tested); Li et al.'s default
    amplitude σ = τ³ = 27 makes the forcing 27 times stronger and the flow turbulent. Solve with
    ``solve_vorticity(..., nu=0.025, length=2π)``.
    """
    return periodic_grf(n, seed, GPO_FORCING_ALPHA, GPO_FORCING_TAU, length=GPO_LENGTH,
                        sigma=_check_positive("random_forcing", "sigma", sigma))


class _Spectral:
    """Wavenumbers, the inverse Laplacian and the 2/3 mask of an n×n grid of [0, L)² for rfft2."""

    def __init__(self, n: int, length: float):
        kx = np.fft.fftfreq(n, 1.0 / n)[:, None]
        ky = np.fft.rfftfreq(n, 1.0 / n)[None, :]
        scale = 2 * np.pi / length
        self.n = n
        # derivative symbols; the Nyquist modes are dropped (a real field's derivative there is ill-defined)
        self.dx = 1j * scale * np.where(np.abs(kx) == n // 2, 0.0, kx) * np.ones_like(ky)
        self.dy = 1j * scale * np.where(ky == n // 2, 0.0, ky) * np.ones_like(kx)
        self.lap = -(scale**2) * (kx**2 + ky**2)  # symbol of Δ
        inv = np.zeros_like(self.lap)
        inv[self.lap != 0] = -1.0 / self.lap[self.lap != 0]
        self.inv_minus_lap = inv  # ψ̂ = ŵ / (|k|² scale²), the k = 0 mode of ψ is zero
        self.dealias = (np.abs(kx) < n / 3) & (ky < n / 3)

    def nonlinear(self, w_hat: np.ndarray) -> np.ndarray:
        """The Fourier coefficients of u·∇w, truncated by the 2/3 rule."""
        psi = w_hat * self.inv_minus_lap
        shape = (self.n, self.n)
        u = np.fft.irfft2(self.dy * psi, s=shape)
        v = np.fft.irfft2(-self.dx * psi, s=shape)
        wx = np.fft.irfft2(self.dx * w_hat, s=shape)
        wy = np.fft.irfft2(self.dy * w_hat, s=shape)
        return np.fft.rfft2(u * wx + v * wy) * self.dealias


def nonlinear_term(w: np.ndarray, length: float = 1.0) -> np.ndarray:
    """u·∇w on the grid, as the solver computes it (pseudo-spectral, 2/3-rule truncated)."""
    w = _check_field("nonlinear_term", "w", w)
    spectral = _Spectral(w.shape[-1], _check_positive("nonlinear_term", "length", length))
    return np.fft.irfft2(spectral.nonlinear(np.fft.rfft2(w)), s=w.shape[-2:])


def _check_field(name: str, label: str, w) -> np.ndarray:
    w = np.asarray(w)
    if not np.issubdtype(w.dtype, np.floating) and not np.issubdtype(w.dtype, np.integer):
        raise TypeError(f"{name}: {label} must be a real array, got dtype {w.dtype}")
    w = w.astype(float)
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"{name}: {label} must have shape (..., n, n), got {w.shape}")
    _check_n(name, w.shape[-1])
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name}: {label} has non-finite values")
    return w


def _step_counts(times, dt: float) -> list[int]:
    try:
        t = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"solve_vorticity: times must be a sequence of numbers, got {times!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"solve_vorticity: times must be a non-empty 1D sequence, got {times!r}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) <= 0):
        raise ValueError(f"solve_vorticity: times must be finite, non-negative and increasing, got {times!r}")
    steps = t / dt
    counts = np.rint(steps)
    bad = np.abs(steps - counts) > 1e-8 * np.maximum(steps, 1.0)
    if np.any(bad):
        raise ValueError(f"solve_vorticity: times {t[bad].tolist()} are not whole multiples of dt = {dt!r}")
    return [int(c) for c in counts]


def solve_vorticity(w0: np.ndarray, forcing: np.ndarray | None, nu: float, times: Sequence[float], dt: float,
                    progress: bool = False, length: float = 1.0) -> np.ndarray:
    """The vorticity at ``times`` from w_0, by CNAB2 pseudo-spectral steps of size ``dt``.

    Parameters
    ----------
    w0 : array (..., n, n)
        Initial vorticity on the grid (i L/n, j L/n); leading axes are a batch of independent
        initial conditions, solved together (one FFT call per batch).
    forcing : array (n, n) or broadcastable to w0, or None
        Time-independent forcing f on the same grid (None: f = 0).
    nu : float
        Viscosity ν > 0.
    times : sequence of float
        Increasing output times ≥ 0, each a whole multiple of ``dt`` (t = 0 returns w0).
    dt : float
        Time step.
    progress : bool
        Show a progress bar over the time steps.
    length : float
        Side L of the periodic square (1: unit torus, MLMC paper; 2π: LoGoS-GPO paper).

    Returns
    -------
    numpy.ndarray (len(times), ..., n, n)
        The vorticity at each requested time (time is the leading axis).

    Raises
    ------
    FloatingPointError
        If the solution becomes non-finite (the step and time are named; dt too large?).
    """
    w0 = _check_field("solve_vorticity", "w0", w0)
    n = w0.shape[-1]
    nu = _check_positive("solve_vorticity", "nu", nu)
    dt = _check_positive("solve_vorticity", "dt", dt)
    length = _check_positive("solve_vorticity", "length", length)
    counts = _step_counts(times, dt)
    spectral = _Spectral(n, length)
    if forcing is None:
        f_hat = 0.0
    else:
        forcing = _check_field("solve_vorticity", "forcing", forcing)
        if forcing.shape[-1] != n:
            raise ValueError(f"solve_vorticity: forcing has shape {forcing.shape}, the grid of w0 is {n}x{n}")
        try:
            np.broadcast_shapes(forcing.shape, w0.shape)
        except ValueError:
            raise ValueError(f"solve_vorticity: forcing of shape {forcing.shape} does not broadcast to w0's "
                             f"{w0.shape}") from None
        f_hat = np.fft.rfft2(forcing)
    half = 0.5 * dt * nu * spectral.lap
    explicit, implicit = 1.0 + half, 1.0 / (1.0 - half)  # Crank–Nicolson: (1 − dt ν Δ/2) w^{n+1} = ...

    w_hat = np.fft.rfft2(w0)
    out = np.empty((len(counts),) + w0.shape)
    steps_total = counts[-1]
    previous = None  # u·∇w at the previous step (for AB2)
    k_out = 0
    # overflow on the way to a blow-up is reported by the finiteness check below, with its step
    with tqdm(total=steps_total, unit="step", disable=not progress, desc="vorticity") as bar, \
            np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps_total + 1):
            while k_out < len(counts) and counts[k_out] == step:
                # t = 0 is w0 itself, not its round trip through the FFT
                out[k_out] = w0 if step == 0 else np.fft.irfft2(w_hat, s=(n, n))
                k_out += 1
            if step == steps_total:
                break
            current = spectral.nonlinear(w_hat)
            if previous is None:
                # Heun start: predictor with N(w^n), corrector with the mean of N(w^n) and N(w*)
                predicted = implicit * (explicit * w_hat + dt * (f_hat - current))
                w_new = implicit * (explicit * w_hat + dt * (f_hat - 0.5 * (current + spectral.nonlinear(predicted))))
            else:
                w_new = implicit * (explicit * w_hat + dt * (f_hat - 1.5 * current + 0.5 * previous))
            if not np.all(np.isfinite(w_new)):
                raise FloatingPointError(f"solve_vorticity: non-finite vorticity at step {step + 1} (t = "
                                         f"{(step + 1) * dt:g}); dt = {dt:g} too large for n = {n}, nu = {nu:g}?")
            previous, w_hat = current, w_new
            bar.update(1)
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("solve_vorticity: the stored vorticity has non-finite values")
    return out


def downsample(w: np.ndarray, m: int) -> np.ndarray:
    """``w`` (..., n, n) on the coarser m×m grid by subsampling: every (n/m)-th point, w[..., ::r, ::r].

    This is how Li et al.'s Navier–Stokes data (and so the MLMC paper's levels 64² … 8²) are made
    coarse: the coarse grid points are fine grid points, so the levels nest and a coarse value is
    a fine value (no filtering; the high modes alias, as in the papers' data).
    """
    w = _check_field("downsample", "w", w)
    n = w.shape[-1]
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1 or n % m:
        raise ValueError(f"downsample: m must be a positive divisor of n = {n}, got {m!r}")
    r = n // m
    return np.ascontiguousarray(w[..., ::r, ::r])
