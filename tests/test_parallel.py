"""The fine solve on 2 MPI ranks equals the serial solve of the same problem."""

import numpy as np
import pytest

import firedrake as fd
from pyop2.mpi import COMM_SELF, COMM_WORLD

from fem_ms import Diffusion, Richards, solve
from fem_ms.coefficients import cell_field, paper_forcing, paper_kle, vertex_field


def _norms(comm, problem_cls):
    n = 20
    mesh = fd.UnitSquareMesh(n, n, quadrilateral=True, comm=comm)
    V = fd.FunctionSpace(mesh, "CG", 1)
    kappa = cell_field(mesh, paper_kle((n, n)).sample_kappa(5))
    f = vertex_field(V, paper_forcing((n, n)).sample(6))
    u = solve(problem_cls(V, kappa, f)).u
    return fd.norm(u), fd.norm(u, "H1"), fd.assemble(kappa * u * fd.dx)


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("problem_cls", [Diffusion, Richards])
def test_two_ranks_match_serial(problem_cls):
    assert COMM_WORLD.size == 2
    distributed = _norms(COMM_WORLD, problem_cls)
    serial = _norms(COMM_SELF, problem_cls)
    np.testing.assert_allclose(distributed, serial, rtol=1e-10)
