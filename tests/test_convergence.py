"""Manufactured solutions with a variable κ: observed rates of P1/Q1 on meshes refined by 2."""

import numpy as np
import pytest
import ufl

import firedrake as fd

from fem_ms import Diffusion, Heat, Richards, RobinBoundary, solve
from fem_ms.metrics import relative_h1_error, relative_l2_error
from fem_ms.solvers import solve_nonlinear

from .conftest import observed_rates

SIZES = (8, 16, 32, 64)


def _manufactured(n, quad, problem_cls, exact, kappa_expr, boundary=None):
    mesh = fd.UnitSquareMesh(n, n, quadrilateral=quad)
    x, y = fd.SpatialCoordinate(mesh)
    u_e = exact(x, y)
    kappa = fd.Function(fd.FunctionSpace(mesh, "CG", 3)).interpolate(kappa_expr(x, y))
    V = fd.FunctionSpace(mesh, "CG", 1)
    probe = problem_cls(V, kappa, 1.0, boundary)
    f = -ufl.div(probe.conductivity(u_e) * ufl.grad(u_e))
    problem = problem_cls(V, kappa, f, boundary)
    u_ref = fd.Function(fd.FunctionSpace(mesh, "CG", 4)).interpolate(u_e)
    return problem, u_ref


def sinsin(x, y):
    return ufl.sin(ufl.pi * x) * ufl.sin(ufl.pi * y)


def kappa_smooth(x, y):
    return 1.0 + 0.5 * ufl.sin(2 * ufl.pi * x) * ufl.cos(3 * ufl.pi * y) + x * y


def _rates(problem_cls, quad, **solve_kwargs):
    l2, h1 = [], []
    for n in SIZES:
        problem, u_ref = _manufactured(n, quad, problem_cls, sinsin, kappa_smooth)
        u = solve(problem, **solve_kwargs).u
        l2.append(relative_l2_error(u, u_ref))
        h1.append(relative_h1_error(u, u_ref))
    return observed_rates(l2), observed_rates(h1)


@pytest.mark.parametrize("quad", [False, True], ids=["P1", "Q1"])
def test_diffusion_rates(quad):
    r_l2, r_h1 = _rates(Diffusion, quad)
    assert np.all(r_l2 > 1.9), r_l2
    assert np.all(r_h1 > 0.95), r_h1


@pytest.mark.parametrize("method", ["newton", "picard"])
def test_richards_rates(method):
    r_l2, r_h1 = _rates(Richards, False, method=method)
    assert np.all(r_l2 > 1.9), r_l2
    assert np.all(r_h1 > 0.95), r_h1


def test_richards_newton_and_picard_agree():
    problem, _ = _manufactured(16, True, Richards, sinsin, kappa_smooth)
    newton = solve_nonlinear(problem, method="newton", rtol=1e-12)
    picard = solve_nonlinear(problem, method="picard", rtol=1e-12)
    assert relative_l2_error(picard.u, newton.u) < 1e-9
    # Newton converges quadratically, Picard linearly: Newton needs fewer iterations
    assert newton.iterations < picard.iterations
    assert picard.residuals[-1] <= 1e-12 * picard.residuals[0]


def test_robin_rates():
    # u = (y − 0.6y²)cos(πx) + y/3 satisfies u(x,0) = 0, ∂u/∂x = 0 at x = 0, 1, and
    # −κ ∂u/∂y = (u − 1) at y = 1 where κ = 2 (α = 1, u_const = 1).
    def exact(x, y):
        return (y - 0.6 * y**2) * ufl.cos(ufl.pi * x) + y / 3

    def kappa(x, y):
        return 2.0 + 0.5 * ufl.sin(2 * ufl.pi * x) * y * (1 - y)

    l2, h1 = [], []
    for n in SIZES:
        problem, u_ref = _manufactured(n, False, Diffusion, exact, kappa, RobinBoundary(1.0, 1.0))
        u = solve(problem).u
        l2.append(relative_l2_error(u, u_ref))
        h1.append(relative_h1_error(u, u_ref))
    assert np.all(observed_rates(l2) > 1.9), l2
    assert np.all(observed_rates(h1) > 0.95), h1


def test_heat_backward_euler_is_first_order_and_reaches_steady_state():
    mesh = fd.UnitSquareMesh(16, 16)
    V = fd.FunctionSpace(mesh, "CG", 1)
    x, y = fd.SpatialCoordinate(mesh)
    kappa = fd.Function(fd.FunctionSpace(mesh, "DG", 0)).interpolate(1 + x)
    finals = []
    for steps in (10, 20, 40, 80):
        heat = Heat(V, kappa, 1.0, dt=0.05 / steps, t_end=0.05, initial=sinsin(x, y))
        finals.append(solve(heat, progress=False).u)
    diffs = [fd.errornorm(a, b) for a, b in zip(finals[:-1], finals[1:])]
    rates = observed_rates(diffs)
    assert np.all(np.abs(rates - 1.0) < 0.1), rates
    # exact limit: a long implicit run reaches the steady diffusion solution
    steady = solve(Diffusion(V, kappa, 1.0)).u
    long_run = solve(Heat(V, kappa, 1.0, dt=0.5, t_end=20.0), progress=False).u
    assert relative_l2_error(long_run, steady) < 1e-10
