"""Global POD and intrusive POD (torch-free): exact limits of the Galerkin projection on snapshot
spaces, orthonormal modes, the truncation's energy, the coarse models shared with GMsFEM, bad input."""

import numpy as np
import pytest

import firedrake as fd

from fem_ms import Diffusion, Richards, cell_field, solve, vertex_field
from fem_ms.coefficients import paper_forcing, paper_kle, vertex_grid_indices
from fem_ms.gmsfem import LinearCoarseModel, PicardCoarseModel
from fem_ms.metrics import relative_l2_error
from fem_ms.pod import PODSpace

N = 12  # cells per side


@pytest.fixture(scope="module")
def space():
    return fd.FunctionSpace(fd.UnitSquareMesh(N, N, quadrilateral=True), "CG", 1)


def problem(V, cls, seed, forcing=True):
    kappa = cell_field(V.mesh(), paper_kle((N, N)).sample_kappa(seed))
    f = vertex_field(V, paper_forcing((N, N)).sample(seed + 100)) if forcing else 1.0
    return cls(V, kappa, f)


def fine(V, cls, seed, forcing=True):
    return solve(problem(V, cls, seed, forcing)).u


@pytest.mark.parametrize("cls", [Diffusion, Richards])
def test_galerkin_on_a_space_holding_the_fine_solution_returns_it(space, cls):
    """Galerkin is a projection: when u_h lies in V_m, the reduced solution is u_h (Céa's exact
    limit), for the linear solve and for the Picard iterations alike."""
    forcing = cls is Diffusion  # Richards with the paper's γ = 2000 forcing has no solution at 12²: f = 1
    snapshots = [fine(space, cls, seed, forcing) for seed in range(4)]
    pod = PODSpace(space, snapshots)
    assert pod.n_modes == 4
    for seed in (0, 3):
        model = pod.reduce(problem(space, cls, seed, forcing))
        assert isinstance(model, PicardCoarseModel if cls is Richards else LinearCoarseModel)
        result = model.solve()
        # the linear solve to rounding; Picard to its stopping tolerance (rtol 1e-8 on the residual)
        assert relative_l2_error(result.u, snapshots[seed]) < (1e-9 if forcing else 1e-6)
        assert result.timings["online"] > 0


def test_all_modes_reproduce_the_snapshots_and_are_orthonormal(space):
    snapshots = [fine(space, Diffusion, seed) for seed in range(5)]
    pod = PODSpace(space, snapshots)
    P = pod.modes
    np.testing.assert_allclose(P.T @ P, np.eye(5), atol=1e-12)
    for u in snapshots:
        x = u.dat.data_ro
        assert np.linalg.norm(P @ (P.T @ x) - x) < 1e-10 * np.linalg.norm(x)
    np.testing.assert_allclose(pod.mode(0).dat.data_ro, P[:, 0])
    # the singular values are those of the snapshot matrix (numpy's SVD, an independent route)
    X = np.stack([u.dat.data_ro for u in snapshots], axis=1)
    np.testing.assert_allclose(pod.singular_values, np.linalg.svd(X, compute_uv=False), rtol=1e-8)


def test_truncation_error_falls_with_modes_and_energy_is_the_singular_value_share(space):
    """On unseen κ and f, more modes never hurt much and the full space beats one mode; the
    energy fraction is Σ_{i≤m} σ_i² / Σ σ_i²."""
    snapshots = [fine(space, Diffusion, seed) for seed in range(8)]
    reference = problem(space, Diffusion, 20)
    u = solve(reference).u
    errors = [relative_l2_error(PODSpace(space, snapshots, n_modes=m).reduce(reference).solve().u, u)
              for m in (1, 8)]
    assert errors[1] < errors[0]
    pod = PODSpace(space, snapshots, n_modes=3)
    s2 = pod.singular_values ** 2
    assert pod.energy() == pytest.approx(s2[:3].sum() / s2.sum())
    assert pod.dimension == 3 and pod.modes.shape == (space.dof_dset.size, 3)


def test_grid_snapshots_give_the_function_snapshots_space(space):
    """``from_grids`` (the multilevel datasets' vertex grids) spans what the Functions span."""
    snapshots = [fine(space, Diffusion, seed) for seed in range(3)]
    grids = np.zeros((3, N + 1, N + 1))
    idx = vertex_grid_indices(space, (N, N))
    for grid, u in zip(grids, snapshots):
        grid[idx] = u.dat.data_ro_with_halos
    a, b = PODSpace(space, snapshots), PODSpace.from_grids(space, grids)
    np.testing.assert_allclose(np.abs(a.modes.T @ b.modes), np.eye(3), atol=1e-10)


def test_bad_input_is_named(space):
    u = fine(space, Diffusion, 0)
    with pytest.raises(ValueError, match="n_modes=2 exceeds the 1 independent"):
        PODSpace(space, [u, u], n_modes=2)
    with pytest.raises(ValueError, match="n_modes must be"):
        PODSpace(space, [u], n_modes=0)
    with pytest.raises(ValueError, match="all zero"):
        PODSpace(space, [fd.Function(space)])
    with pytest.raises(ValueError, match="snapshots must be"):
        PODSpace(space, [])
    bad = u.copy(deepcopy=True)
    bad.dat.data[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        PODSpace(space, [bad])
    with pytest.raises(ValueError, match="snapshot 0 is not a Function"):
        PODSpace(space, [np.zeros(3)])
    with pytest.raises(TypeError, match="V must be a firedrake FunctionSpace"):
        PODSpace("V", [u])
    with pytest.raises(ValueError, match="with at least one sample"):
        PODSpace.from_grids(space, np.zeros((0, N + 1, N + 1)))
    with pytest.raises(IndexError, match="mode 1 outside"):
        PODSpace(space, [u]).mode(1)


def _pod_norms(comm, grids, problem_cls):
    """Norms of the Galerkin solution of an unseen κ on the 3-mode POD space of ``grids``."""
    from firedrake.petsc import garbage_cleanup

    mesh = fd.UnitSquareMesh(N, N, quadrilateral=True, comm=comm)
    V = fd.FunctionSpace(mesh, "CG", 1)
    pod = PODSpace.from_grids(V, grids, n_modes=3)
    u = pod.reduce(problem_cls(V, cell_field(mesh, paper_kle((N, N)).sample_kappa(9)), 1.0)).solve().u
    norms = (fd.norm(u), fd.norm(u, "H1"), *pod.singular_values[:3])
    # the PETSc objects of a two-rank space are destroyed here, collectively, by both ranks at the
    # same point: left to the interpreter's exit, the ranks freed them in different orders and hung
    del pod, u, V
    garbage_cleanup(mesh)
    return norms


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("problem_cls", [Diffusion, Richards])
def test_two_ranks_match_serial(problem_cls):
    """The snapshot Gram matrix summed over the ranks, P distributed: the same space and solution."""
    from pyop2.mpi import COMM_SELF, COMM_WORLD

    assert COMM_WORLD.size == 2
    V = fd.FunctionSpace(fd.UnitSquareMesh(N, N, quadrilateral=True, comm=COMM_SELF), "CG", 1)
    idx = vertex_grid_indices(V, (N, N))
    grids = np.zeros((5, N + 1, N + 1))
    for seed, grid in enumerate(grids):
        grid[idx] = fine(V, problem_cls, seed, forcing=False).dat.data_ro_with_halos
    np.testing.assert_allclose(_pod_norms(COMM_WORLD, grids, problem_cls), _pod_norms(COMM_SELF, grids, problem_cls),
                               rtol=1e-9)
