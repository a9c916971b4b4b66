"""Bad input gives a clear exception that names the problem."""

import numpy as np
import pytest

import firedrake as fd

from fem_ms import ConvergenceError, Diffusion, Richards, make_problem, solve
from fem_ms.solvers import solve_nonlinear, solver_parameters


@pytest.fixture
def setup():
    mesh = fd.UnitSquareMesh(6, 6)
    V = fd.FunctionSpace(mesh, "CG", 1)
    kappa = fd.Function(fd.FunctionSpace(mesh, "DG", 0)).assign(1.0)
    return mesh, V, kappa


def test_nonpositive_kappa(setup):
    _, V, kappa = setup
    kappa.dat.data[3] = 0.0
    with pytest.raises(ValueError, match="positive everywhere.*min kappa = 0"):
        Diffusion(V, kappa)
    kappa.dat.data[3] = -2.0
    with pytest.raises(ValueError, match="min kappa = -2"):
        Diffusion(V, kappa)


def test_nan_kappa(setup):
    _, V, kappa = setup
    kappa.dat.data[0] = np.nan
    with pytest.raises(ValueError, match="1 non-finite"):
        Diffusion(V, kappa)


def test_kappa_on_wrong_mesh_or_type(setup):
    _, V, _ = setup
    other = fd.UnitSquareMesh(6, 6)
    with pytest.raises(ValueError, match="different mesh"):
        Diffusion(V, fd.Function(fd.FunctionSpace(other, "DG", 0)).assign(1.0))
    with pytest.raises(TypeError, match="kappa must be a firedrake Function"):
        Diffusion(V, np.ones(72))
    with pytest.raises(ValueError, match="scalar"):
        Diffusion(V, fd.Function(fd.VectorFunctionSpace(V.mesh(), "DG", 0)))


def test_unknown_names(setup):
    _, V, kappa = setup
    with pytest.raises(ValueError, match="unknown problem 'darcy'.*diffusion"):
        make_problem("darcy", V, kappa)
    with pytest.raises(ValueError, match="unknown solver 'superfast'"):
        solve(Diffusion(V, kappa), solver="superfast")
    with pytest.raises(ValueError, match="unknown nonlinear method"):
        solve_nonlinear(Richards(V, kappa), method="bisection")


def test_solver_missing_from_petsc_build():
    from firedrake.petsc import PETSc

    if PETSc.Sys.hasExternalPackage("hypre"):
        assert solver_parameters("cg-hypre")["pc_type"] == "hypre"
    else:
        with pytest.raises(ValueError, match="needs PETSc built with hypre"):
            solver_parameters("cg-hypre")


@pytest.mark.parametrize("method", ["newton", "picard"])
def test_richards_not_converging_reports_iterations_and_residual(setup, method):
    _, V, kappa = setup
    problem = Richards(V, kappa, 50.0)
    with pytest.raises(ConvergenceError, match=r"after 1 iterations, residual norm \d") as info:
        solve_nonlinear(problem, method=method, max_iterations=1, rtol=1e-14)
    assert info.value.iterations == 1 and info.value.residual > 0


def test_heat_time_step_must_divide(setup):
    from fem_ms import Heat

    _, V, kappa = setup
    with pytest.raises(ValueError, match="whole number of steps"):
        Heat(V, kappa, dt=0.3, t_end=1.0)
