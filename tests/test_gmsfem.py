"""GMsFEM: local eigenproblems against scipy, exact limits, monotone errors, bad input."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import firedrake as fd

from fem_ms import Diffusion, Heat, Richards, RobinBoundary, cell_field, solve, structured_hierarchy
from fem_ms.coefficients import paper_kle
from fem_ms.gmsfem import (
    GMsFEM,
    LocalBases,
    MultiscaleSpace,
    SpaceLayout,
    SpectralBasisProvider,
    SpectralConvergenceError,
    available_providers,
    get_provider,
)
from fem_ms.gmsfem.spectral import ElementMatrices
from fem_ms.metrics import relative_h1_error, relative_l2_error

QUIET = {"progress": False}


def kle_problem(coarse, fine, cls=Diffusion, seed=0, quad=True, boundary=None, **kwargs):
    pair = structured_hierarchy(coarse, fine, quadrilateral=quad)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((fine, fine)).sample_kappa(seed))
    return pair, cls(V, kappa, 1.0, boundary, **kwargs)


def test_provider_registry():
    assert "slepc" in available_providers()
    assert isinstance(get_provider("slepc", progress=False), SpectralBasisProvider)
    with pytest.raises(ValueError, match="unknown basis provider 'nope'.*slepc"):
        get_provider("nope")


@pytest.mark.parametrize("quad", [True, False], ids=["Q1", "P1"])
def test_eigenvalues_match_scipy(quad):
    pair, problem = kle_problem(3, 30, quad=quad)
    g = MultiscaleSpace.for_problem(problem, pair, n_basis=6, provider_options=QUIET)
    for i in (0, 1, 5):  # corner, half, full
        A, S = g.patches.local_matrices(i)
        ref = np.sort(spla.eigsh(A.tocsc(), k=6, M=S.tocsc(), sigma=-1e-3, which="LM")[0])
        lam = g.bases.eigenvalues[i]
        assert abs(lam[0]) < 1e-8 * lam[1]
        np.testing.assert_allclose(lam[1:], ref[1:], rtol=1e-8)
        phi = g.bases.vectors[i]
        np.testing.assert_allclose(phi.T @ S @ phi, np.eye(6), atol=1e-8)  # S-orthonormal
        np.testing.assert_allclose(A @ phi, S @ phi * lam, atol=1e-6 * abs(A).max())


@pytest.mark.parametrize("dim,quad", [(2, False), (2, True), (3, True), (3, False)])
def test_element_matrices_sum_to_the_global_matrix(dim, quad):
    pair = structured_hierarchy(2, 4, dim=dim, quadrilateral=quad)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((4,) * dim).sample_kappa(0))
    problem = Diffusion(V, kappa, 1.0)
    geom, V = SpaceLayout.of(pair, problem.V, problem.bcs).geometry, problem.V
    elements = ElementMatrices.assemble(V, problem.kappa, geom)
    u, v = fd.TrialFunction(V), fd.TestFunction(V)
    A = fd.assemble(problem.kappa * fd.inner(fd.grad(u), fd.grad(v)) * fd.dx).petscmat
    dense = A.convert("dense").getDenseArray()
    k = geom.cell_dofs.shape[1]
    acc = np.zeros_like(dense)
    np.add.at(acc, (np.repeat(geom.cell_dofs, k, 1).ravel(), np.tile(geom.cell_dofs, (1, k)).ravel()),
              elements.stiffness.ravel())
    np.testing.assert_allclose(acc, dense, atol=1e-12 * abs(dense).max())


def test_partition_of_unity_and_kinds():
    pair, problem = kle_problem(4, 16)
    g = MultiscaleSpace.for_problem(problem, pair, n_basis=1, provider_options=QUIET)
    total = np.zeros(problem.V.dim())
    for nbh in g.neighbourhoods:
        np.add.at(total, nbh.dofs, nbh.chi)
        # χ_i is 1 at its own vertex, and vanishes on the boundary of ω_i
        at_vertex = np.all(np.isclose(g.geometry.dof_coords[nbh.dofs], nbh.vertex), axis=1)
        assert nbh.chi[at_vertex] == pytest.approx(1.0)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    kinds = [n.kind for n in g.neighbourhoods]
    assert (kinds.count("corner"), kinds.count("half"), kinds.count("full")) == (4, 12, 9)


def test_all_local_dofs_reproduce_the_fine_solution():
    # one coarse cell: the four neighbourhoods are the whole domain; n_basis = the 7² DOFs of each
    # without Dirichlet condition (more would make a neighbourhood's functions dependent, which is
    # refused). The four spaces overlap, so the coarse matrix is singular but consistent: the
    # checked direct solve still gives the unique Galerkin solution, the fine one.
    pair, problem = kle_problem(1, 8)
    u = GMsFEM(problem, pair, n_basis=49, provider_options=QUIET).solve().u
    assert relative_l2_error(u, solve(problem).u) < 1e-10


def test_constant_kappa_first_eigenpair():
    pair = structured_hierarchy(3, 12)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = fd.Function(fd.FunctionSpace(pair.fine, "DG", 0)).assign(3.0)
    g = MultiscaleSpace(pair, V, kappa, n_basis=3, provider_options=QUIET)
    for i in g.owned:
        lam, phi = g.bases.eigenvalues[i], g.bases.vectors[i]
        assert abs(lam[0]) < 1e-9
        np.testing.assert_allclose(phi[:, 0], phi[0, 0], rtol=1e-8)  # constant


def test_errors_fall_as_n_basis_grows():
    pair, problem = kle_problem(4, 40, seed=2)
    ref = solve(problem).u
    errors = []
    for n_basis in (1, 2, 4, 8, 12):
        u = GMsFEM(problem, pair, n_basis=n_basis, provider_options=QUIET).solve().u
        errors.append((relative_l2_error(u, ref), relative_h1_error(u, ref)))
    l2, h1 = np.array(errors).T
    assert np.all(np.diff(l2) < 0) and np.all(np.diff(h1) < 0), errors


class QuadrantUnitVectors:
    """On one coarse cell, each corner's neighbourhood gets the unit vectors of the interior DOFs in
    its own quadrant: together a basis of the fine space (χ_i > 0 on them, no DOF shared)."""

    name = "quadrant-unit-vectors"

    def local_bases(self, patches, n_basis):
        vectors = {}
        for i in patches.owned:
            nbh = patches.neighbourhoods[i]
            x = patches.geometry.dof_coords[nbh.dofs]
            mine = np.flatnonzero(~patches.geometry.dirichlet[nbh.dofs]
                                  & np.all(np.abs(x - nbh.vertex) < 0.5, axis=1))
            assert len(mine) == n_basis
            phi = np.zeros((nbh.size, n_basis))
            phi[mine, np.arange(n_basis)] = 1.0
            vectors[i] = phi
        return LocalBases(vectors)


def test_every_coarse_model_reproduces_its_fine_solver_when_the_space_is_the_fine_space():
    # one coarse cell of 7 x 7 fine cells: 36 interior DOFs, 9 in each corner's quadrant
    for cls, kwargs in ((Diffusion, {}), (Richards, {}), (Heat, {"dt": 1e-3, "t_end": 5e-3})):
        pair, problem = kle_problem(1, 7, cls=cls, **kwargs)
        fine = solve(problem, **({"progress": False} if cls is Heat else {})).u
        options = {Richards: {"rtol": 1e-12}, Heat: {"progress": False}}.get(cls, {})
        ms = GMsFEM(problem, pair, n_basis=9, basis=QuadrantUnitVectors()).solve(**options)
        assert relative_l2_error(ms.u, fine) < 1e-7, cls.name


def test_robin_gmsfem_is_the_galerkin_projection_of_the_fine_robin_system():
    # an independent dense computation of u = Rᵀ (R A Rᵀ)⁻¹ R b from the Robin forms
    pair, problem = kle_problem(2, 12, boundary=RobinBoundary(alpha=2.0, u_const=0.5))
    space = MultiscaleSpace.for_problem(problem, pair, n_basis=4, provider_options=QUIET)
    R = space.R.convert("dense").getDenseArray()
    assert not np.any(R[:, space.geometry.dirichlet])  # u = 0 on the Dirichlet part only
    V = problem.V
    A = fd.assemble(problem.stiffness(fd.TrialFunction(V), fd.TestFunction(V))).petscmat
    A = A.convert("dense").getDenseArray()
    b = fd.assemble(problem.load(fd.TestFunction(V))).dat.data_ro
    expected = R.T @ np.linalg.solve(R @ A @ R.T, R @ b)
    u = space.reduce(problem).solve().u
    np.testing.assert_allclose(u.dat.data_ro, expected, rtol=1e-9, atol=1e-12 * abs(expected).max())
    assert relative_l2_error(u, solve(problem).u) < 0.1


def test_richards_gmsfem_is_close_to_fine():
    pair, problem = kle_problem(4, 40, cls=Richards, seed=1)
    fine = solve(problem).u
    ms = GMsFEM(problem, pair, n_basis=8, provider_options=QUIET).solve()
    assert ms.iterations >= 1 and ms.residuals[-1] < ms.residuals[0]
    assert relative_l2_error(ms.u, fine) < 0.15


def test_bad_input():
    pair, problem = kle_problem(4, 8)
    with pytest.raises(ValueError, match="n_basis=10 exceeds the 9 fine DOFs of neighbourhood"):
        MultiscaleSpace.for_problem(problem, pair, n_basis=10, provider_options=QUIET)
    other = structured_hierarchy(2, 8)
    with pytest.raises(ValueError, match="not on the fine mesh of this pair"):
        GMsFEM(problem, other, n_basis=2)
    with pytest.raises(ValueError, match="n_basis must be a positive integer"):
        GMsFEM(problem, pair, n_basis=0)


def test_slepc_not_converging_names_the_neighbourhood():
    pair, problem = kle_problem(2, 16)
    provider = SpectralBasisProvider({"eps_max_it": 1, "eps_ncv": 5}, options_prefix="noconv_",
                                     progress=False)
    with pytest.raises(SpectralConvergenceError, match=r"converged \d of 4 eigenpairs in neighbourhood 0"):
        MultiscaleSpace.for_problem(problem, pair, n_basis=4, basis=provider)


class WrongShapeProvider:
    name = "wrong-shape"

    def local_bases(self, patches, n_basis):
        return LocalBases({i: np.ones((patches.neighbourhoods[i].size, n_basis - 1)) for i in patches.owned})


def test_provider_returning_wrong_shape_is_rejected():
    pair, problem = kle_problem(2, 8)
    with pytest.raises(ValueError, match=r"'wrong-shape' returned an array of shape \(25, 2\) for "
                                         r"neighbourhood 0 \(corner\); expected \(25, 3\)"):
        MultiscaleSpace.for_problem(problem, pair, n_basis=3, basis=WrongShapeProvider())


def test_canonical_patches_stack_by_kind():
    pair, problem = kle_problem(3, 12)
    g = MultiscaleSpace.for_problem(problem, pair, n_basis=1, provider_options=QUIET)
    shapes = {}
    for nbh in g.neighbourhoods:
        kp = g.patches.kappa_patch(nbh.index)
        shapes.setdefault(nbh.kind, set()).add(kp.shape)
        # the canonical vertex grid covers ω_i's DOFs one to one, vertex at the low corner
        pos = g.patches.grid_positions(nbh.index)
        grid = np.zeros(tuple(s + 1 for s in kp.shape), dtype=int)
        grid[pos] += 1
        assert np.all(grid == 1)
        vertex_pos = [p[np.all(np.isclose(g.geometry.dof_coords[nbh.dofs], nbh.vertex), 1)][0] for p in pos]
        for axis in range(2):
            if axis >= 2 - len(nbh.boundary_axes):  # boundary axes come last
                assert vertex_pos[axis] == 0
    assert shapes == {"full": {(8, 8)}, "half": {(8, 4)}, "corner": {(4, 4)}}


def test_later_samples_on_a_mesh_pair_match_a_fresh_pair():
    """The κ-independent layout (cell grid numbering, patch positions, R's sparsity) is cached with
    the mesh pair; a second κ on a used pair must give what a fresh pair gives."""
    pair, first = kle_problem(3, 12, seed=0)
    MultiscaleSpace.for_problem(first, pair, n_basis=3, provider_options=QUIET)  # fills the cache
    kappa = cell_field(pair.fine, paper_kle((12, 12)).sample_kappa(1))
    warm = MultiscaleSpace(pair, first.V, kappa, n_basis=3, provider_options=QUIET)
    fresh_pair, second = kle_problem(3, 12, seed=1)
    cold = MultiscaleSpace.for_problem(second, fresh_pair, n_basis=3, provider_options=QUIET)
    for i in range(len(cold.neighbourhoods)):
        assert np.array_equal(warm.patches.kappa_patch(i), cold.patches.kappa_patch(i))
        assert all(np.array_equal(a, b) for a, b in zip(warm.patches.grid_positions(i),
                                                        cold.patches.grid_positions(i)))
    for a, b in zip(warm.R.getValuesCSR(), cold.R.getValuesCSR()):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
    first_space = MultiscaleSpace.for_problem(first, pair, n_basis=3, provider_options=QUIET)
    assert not np.array_equal(warm.patches.kappa_patch(4), first_space.patches.kappa_patch(4))


@pytest.mark.parametrize("dim", [2, 3])
def test_local_matrices_from_the_patch_grid_equal_firedrakes(dim):
    from fem_ms.gmsfem import PatchSet
    from fem_ms.gmsfem.spectral import local_matrices

    pair = structured_hierarchy(2, 8, dim=dim)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((8,) * dim).sample_kappa(4))
    layout = SpaceLayout.of(pair, V, [])
    patches = PatchSet(layout, range(len(layout.neighbourhoods)), kappa, V)
    assert patches._grid_path
    for i in patches.owned:
        A, S = patches.local_matrices(i)
        A_fd, S_fd = local_matrices(layout.neighbourhoods[i], layout.geometry, patches.elements)
        for ours, theirs in ((A, A_fd), (S, S_fd)):
            assert abs(ours - theirs).max() <= 1e-12 * abs(theirs).max()
