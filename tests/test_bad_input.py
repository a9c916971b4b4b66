"""A fuzz corpus of bad input for the public API and the CLI, generated systematically: every
argument of the public constructors and solves with wrong types, out-of-range values, NaN/inf,
empty and huge sizes. Each must raise ValueError or TypeError naming the argument (or exit with
status 2 and one line for the CLI) — never return NaN, hang, or abort in PETSc."""

import math
import subprocess
import sys

import numpy as np
import pytest

import firedrake as fd

from fem_ms import Diffusion, Heat, Richards, RobinBoundary, cell_field, solve, structured_hierarchy
from fem_ms.coefficients import GaussianRandomForcing, KLExpansion, paper_forcing, paper_kle
from fem_ms.gmsfem import GMsFEM, MultiscaleSpace
from fem_ms.solvers import solve_nonlinear

NAN, INF = math.nan, math.inf
# wrong for any count (a positive integer)
BAD_COUNTS = [0, -1, 2.5, "4", None, True, NAN, INF]
# wrong for any positive real
BAD_POSITIVE = [0, -1.0, NAN, INF, -INF, "1", None, True]
# wrong for any real
BAD_REAL = [NAN, INF, -INF, "1", None, True]


@pytest.fixture(scope="module")
def small():
    pair = structured_hierarchy(2, 8)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((8, 8)).sample_kappa(0))
    return pair, V, kappa


def raises_naming(name, call):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def cases(name, values, make):
    return [pytest.param(name, make(v), id=f"{name}={v!r}") for v in values]


CONSTRUCTORS = [
    *cases("coarse_cells", BAD_COUNTS, lambda v: lambda s: structured_hierarchy(v, 8)),
    *cases("fine_cells", BAD_COUNTS, lambda v: lambda s: structured_hierarchy(2, v)),
    *cases("fine_cells", [10**6], lambda v: lambda s: structured_hierarchy(2, v)),  # 10^12 cells
    *cases("dim", [1, 4, "2", None, 2.0], lambda v: lambda s: structured_hierarchy(2, 8, dim=v)),
    *cases("cells_per_side", [0, -3, (2.5, 2.5), "ab", (), (4, 4, 4, 4)], lambda v: lambda s: paper_kle(v)),
    *cases("energy", [0, 1.5, NAN, "x", None], lambda v: lambda s: paper_kle((8, 8), energy=v)),
    *cases("correlation_lengths", [(0.0, 0.1), (-1.0, 0.1), (NAN, 0.1), (0.1,)],
           lambda v: lambda s: KLExpansion((8, 8), v, 2.0)),
    *cases("variance", BAD_POSITIVE, lambda v: lambda s: KLExpansion((8, 8), (0.1, 0.1), v)),
    *cases("seed", [-1, 1.5, "1", None, True, NAN], lambda v: lambda s: paper_kle((8, 8)).sample_kappa(v)),
    *cases("contrast", [1.0, 0.5, 0, NAN, INF, "9600"],
           lambda v: lambda s: paper_kle((8, 8)).sample_kappa(0, contrast=v)),
    *cases("gamma", BAD_POSITIVE, lambda v: lambda s: GaussianRandomForcing((8, 8), v, 1.0, 0.5)),
    *cases("seed", [-1, 1.5, None], lambda v: lambda s: paper_forcing((8, 8)).sample(v)),
    *cases("forcing", BAD_REAL, lambda v: lambda s: Diffusion(s[1], s[2], v)),
    *cases("dt", BAD_POSITIVE, lambda v: lambda s: Heat(s[1], s[2], 1.0, dt=v, t_end=1e-3)),
    *cases("t_end", BAD_POSITIVE, lambda v: lambda s: Heat(s[1], s[2], 1.0, dt=1e-4, t_end=v)),
    *cases("alpha", BAD_POSITIVE, lambda v: lambda s: RobinBoundary(alpha=v)),
    *cases("u_const", BAD_REAL, lambda v: lambda s: RobinBoundary(u_const=v)),
    *cases("boundary", ["robin", 3], lambda v: lambda s: Diffusion(s[1], s[2], 1.0, v)),
    *cases("solver", ["nope", 3, None], lambda v: lambda s: solve(Diffusion(s[1], s[2]), solver=v)),
    *cases("rtol", [0, -1.0, NAN, "1e-8", None],
           lambda v: lambda s: solve_nonlinear(Richards(s[1], s[2]), rtol=v)),
    *cases("max_iterations", [0, -1, 1.5, True, "3"],
           lambda v: lambda s: solve_nonlinear(Richards(s[1], s[2]), max_iterations=v)),
    *cases("n_basis", [0, -1, 1.5, True, "8", NAN, None], lambda v: lambda s: GMsFEM(Diffusion(s[1], s[2]), s[0], v)),
    *cases("n_basis", [10**6], lambda v: lambda s: GMsFEM(Diffusion(s[1], s[2]), s[0], v).offline()),
    *cases("basis", ["nope", 3, None], lambda v: lambda s: GMsFEM(Diffusion(s[1], s[2]), s[0], 2, basis=v)),
    *cases("provider_options|eps_options", ["x", [1]],
           lambda v: lambda s: GMsFEM(Diffusion(s[1], s[2]), s[0], 2, provider_options={"eps_options": v})),
    *cases("rtol", [0, NAN, -1.0],
           lambda v: lambda s: GMsFEM(Richards(s[1], s[2]), s[0], 2, provider_options={"progress": False})
           .solve(rtol=v)),
    *cases("max_iterations", [0, 1.5, True],
           lambda v: lambda s: GMsFEM(Richards(s[1], s[2]), s[0], 2, provider_options={"progress": False})
           .solve(max_iterations=v)),
]


@pytest.mark.parametrize("name, call", CONSTRUCTORS)
def test_bad_arguments_raise_naming_the_argument(small, name, call):
    raises_naming(name, lambda: call(small))


def test_multiscale_space_maps_refuse_wrong_shapes(small):
    pair, V, kappa = small
    space = MultiscaleSpace(pair, V, kappa, n_basis=2, provider_options={"progress": False})
    raises_naming("coarse coefficients must have shape", lambda: space.reconstruct(np.ones(space.dimension + 1)))
    with pytest.raises(IndexError, match="basis function"):
        space.basis_function(len(space.neighbourhoods), 0)
    raises_naming("kappa the multiscale space was built for", lambda: space.reduce(
        Diffusion(V, cell_field(pair.fine, paper_kle((8, 8)).sample_kappa(1)))))


def test_no_nan_from_a_diverging_nonlinear_solve(small):
    from fem_ms import ConvergenceError

    _, V, kappa = small
    for method in ("picard", "newton"):
        with pytest.raises(ConvergenceError):
            solve(Richards(V, kappa, 1e300), method=method)


@pytest.mark.parametrize("args", [
    ["solve", "--fine", "0"], ["solve", "--fine", "-4"], ["solve", "--fine", "abc"], ["solve", "--coarse", "0"],
    ["solve", "--n-basis", "-1"], ["solve", "--n-basis", "x"], ["solve", "--seed", "-1"], ["solve", "--seed", "nan"],
    ["solve", "--dim", "4"], ["solve", "--forcing", "sin"], ["solve", "--fine", "1000000"],
    ["generate"], ["generate", "/"], ["train-basis", "missing.toml"],
])
def test_bad_cli_flags_exit_2_with_one_line(args):
    proc = subprocess.run([sys.executable, "-m", "fem_ms.cli", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("fem-ms")]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
