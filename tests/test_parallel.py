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


def _gmsfem(comm, problem_cls):
    from fem_ms import structured_hierarchy
    from fem_ms.gmsfem import GMsFEM

    pair = structured_hierarchy(4, 24, comm=comm)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((24, 24)).sample_kappa(3))
    g = GMsFEM(problem_cls(V, kappa, 1.0), pair, n_basis=4, provider_options={"progress": False})
    u = g.solve().u
    A0 = g.model.operator()
    rows = range(*A0.getOwnershipRange())
    block = A0.getValues(rows, range(A0.getSize()[1]))
    dense = np.concatenate(comm.allgather(block))
    return dense, (fd.norm(u), fd.norm(u, "H1"), fd.assemble(kappa * u * fd.dx))


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("problem_cls", [Diffusion, Richards])
def test_gmsfem_two_ranks_match_serial(problem_cls):
    A0_par, norms_par = _gmsfem(COMM_WORLD, problem_cls)
    A0_ser, norms_ser = _gmsfem(COMM_SELF, problem_cls)
    np.testing.assert_allclose(A0_par, A0_ser, rtol=1e-9, atol=1e-9 * abs(A0_ser).max())
    np.testing.assert_allclose(norms_par, norms_ser, rtol=1e-9)


@pytest.mark.parallel(nprocs=2)
def test_dataset_two_ranks_equal_one_rank():
    import shutil
    import tempfile

    import h5py

    from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig, generate

    root = COMM_WORLD.bcast(tempfile.mkdtemp(prefix="fem-ms-par-") if COMM_WORLD.rank == 0 else None)
    try:
        for config in (MultilevelConfig(name="levels", samples=3, levels=(4, 8), forcing="random"),
                       GMsFEMBasisConfig(name="basis", samples=3, fine=8, coarse=2, n_basis=2)):
            two = generate(config, f"{root}/two", progress=False)
            if COMM_WORLD.rank == 0:
                one = generate(config, f"{root}/one", comm=COMM_SELF, progress=False)
                with h5py.File(one) as a, h5py.File(two) as b:
                    names = []
                    a.visit(lambda n, a=a, names=names: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
                    assert names
                    for n in names:
                        assert np.array_equal(a[n][()], b[n][()]), n
            COMM_WORLD.barrier()
    finally:
        COMM_WORLD.barrier()
        if COMM_WORLD.rank == 0:
            shutil.rmtree(root)
