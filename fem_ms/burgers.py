"""1D viscous Burgers on the periodic unit interval, pseudo-spectrally with ETDRK4.

    u_t + (u²/2)_x = ν u_xx,   x ∈ [0, 1) periodic,

as in the FNO/LoGoS-GPO benchmark (initial condition u_0 ~ N(0, σ²(−Δ + τ² I)^{−γ}), solution
at t = 1). The viscous term is integrated exactly (exponential time differencing), the
nonlinear term by the fourth-order ETDRK4 scheme of Cox & Matthews with the contour-integral
coefficients of Kassam & Trefethen (2005); products are dealiased by the 2/3 rule.

Written here in numpy (a few dozen lines) because the scheme is short and exactly what is
wanted; neither Firedrake nor a library of ours offers a periodic spectral integrator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BurgersSolver", "grf_initial_condition", "cole_hopf_solution"]


class BurgersSolver:
    """ETDRK4 pseudo-spectral solver on ``points`` equispaced points x_j = j / points.

    Parameters
    ----------
    points : int
        Grid points (even, ≥ 8); the Fourier resolution of the solve.
    viscosity : float
        ν > 0.
    dt : float
        Time step; the final time must be a whole number of steps.
    """

    def __init__(self, points: int, viscosity: float, dt: float):
        if isinstance(points, bool) or not isinstance(points, int) or points < 8 or points % 2:
            raise ValueError(f"BurgersSolver: points must be an even integer >= 8, got {points!r}")
        if not viscosity > 0:
            raise ValueError(f"BurgersSolver: viscosity must be positive, got {viscosity!r}")
        if not dt > 0:
            raise ValueError(f"BurgersSolver: dt must be positive, got {dt!r}")
        self.points, self.viscosity, self.dt = points, float(viscosity), float(dt)
        k = np.arange(points // 2 + 1)
        self.ik = 2j * np.pi * k
        self.ik[-1] = 0.0  # the Nyquist mode of a derivative of a real field is set to zero
        self.dealias = k < points / 3  # 2/3 rule: |k| < N/3 survive the quadratic product
        L = -self.viscosity * (2 * np.pi * k) ** 2
        self.E, self.E2 = np.exp(dt * L), np.exp(dt * L / 2)
        # φ-function coefficients by a contour integral around each dt·L (Kassam & Trefethen):
        # the Taylor-free formula that stays accurate where dt·L → 0.
        r = np.exp(1j * np.pi * (np.arange(1, 33) - 0.5) / 32)
        LR = dt * L[:, None] + r[None, :]
        self.Q = dt * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
        self.f1 = dt * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
        self.f2 = dt * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=1))
        self.f3 = dt * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))

    @property
    def x(self) -> np.ndarray:
        """The grid points ``k / points``, k = 0, ..., points − 1, of the periodic unit interval."""
        return np.arange(self.points) / self.points

    def _nonlinear(self, v: np.ndarray) -> np.ndarray:
        u = np.fft.irfft(v * self.dealias, n=self.points)
        return -0.5 * self.ik * np.fft.rfft(u * u)

    def solve(self, u0: np.ndarray, t_end: float) -> np.ndarray:
        """u(·, t_end) on the grid from u0 on the grid."""
        u0 = np.asarray(u0, dtype=float)
        if u0.shape != (self.points,):
            raise ValueError(f"BurgersSolver.solve: u0 must have shape ({self.points},), got {u0.shape}")
        if not np.all(np.isfinite(u0)):
            raise ValueError("BurgersSolver.solve: u0 has non-finite values")
        steps = t_end / self.dt
        if t_end < 0 or abs(steps - round(steps)) > 1e-9 * max(steps, 1):
            raise ValueError(f"BurgersSolver.solve: t_end/dt = {steps:g} must be a whole non-negative number")
        v = np.fft.rfft(u0)
        for _ in range(int(round(steps))):
            Nv = self._nonlinear(v)
            a = self.E2 * v + self.Q * Nv
            Na = self._nonlinear(a)
            b = self.E2 * v + self.Q * Na
            Nb = self._nonlinear(b)
            c = self.E2 * a + self.Q * (2 * Nb - Nv)
            Nc = self._nonlinear(c)
            v = self.E * v + Nv * self.f1 + 2 * (Na + Nb) * self.f2 + Nc * self.f3
        u = np.fft.irfft(v, n=self.points)
        if not np.all(np.isfinite(u)):
            raise FloatingPointError(f"BurgersSolver: the solution blew up (dt={self.dt} too large?)")
        return u


def grf_initial_condition(points: int, rng: np.random.Generator, sigma: float = 25.0, tau: float = 5.0,
                          gamma: float = 2.0) -> np.ndarray:
    """A sample of N(0, σ²(−Δ + τ² I)^{−γ}) on the periodic unit interval, on ``points`` points.

    The defaults give the paper's 625(−Δ + 25 I)^{−2}. Zero mean: the k = 0 mode is dropped
    (as in the FNO data), so ∫u_0 = 0 and, Burgers conserving the mean, ∫u = 0 at all times.
    """
    k = np.arange(points // 2 + 1)
    std = sigma * ((2 * np.pi * k) ** 2 + tau**2) ** (-gamma / 2)
    std[0] = 0.0
    # Karhunen–Loève over the real Fourier basis {1, √2 cos 2πkx, √2 sin 2πkx}: unit-variance
    # real and imaginary parts give the covariance above at the grid points.
    xi = rng.standard_normal((2, len(k)))
    coef = std * (xi[0] + 1j * xi[1]) / np.sqrt(2) * points
    coef[-1] = coef[-1].real * np.sqrt(2)  # the Nyquist mode is real
    return np.fft.irfft(coef, n=points)


def cole_hopf_solution(x: np.ndarray, t: float, viscosity: float, amplitudes=(1.2, 1.0, 0.5)) -> np.ndarray:
    """Exact Burgers solution u = −2ν φ_x / φ with φ = c_0 + Σ_k c_k e^{−ν(2πk)² t} cos 2πkx.

    φ solves the heat equation φ_t = ν φ_xx, so u solves u_t + u u_x = ν u_xx (Cole–Hopf);
    ``amplitudes`` = (c_0, c_1, ...) must keep φ > 0.
    """
    x = np.asarray(x, dtype=float)
    phi, dphi = np.full_like(x, amplitudes[0]), np.zeros_like(x)
    for k, c in enumerate(amplitudes[1:], start=1):
        w = 2 * np.pi * k
        decay = c * np.exp(-viscosity * w**2 * t)
        phi += decay * np.cos(w * x)
        dphi -= decay * w * np.sin(w * x)
    if np.any(phi <= 0):
        raise ValueError("cole_hopf_solution: the amplitudes make φ non-positive")
    return -2 * viscosity * dphi / phi
