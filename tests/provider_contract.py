"""The contract every GMsFEM basis provider passes, as a shared test case (gpytorch's style).

A provider's test is a subclass that supplies :meth:`BasisProviderContract.make_provider` and
states what it promises (S-orthonormal vectors, eigenvalues, the error factor against SLEPc):

    class TestMyProvider(BasisProviderContract):
        error_factor = {2: 1.5}
        def make_provider(self, dim, comm):
            return MyProvider(...)

The dimensions in ``dims`` become the ``contract_dim`` parameter of each check (tests/conftest.py).
It then runs every check below: shapes for every owned neighbourhood of every kind in 2D and 3D,
finite and independent vectors whose span holds the constant, determinism, rejection of bad
input, a GMsFEM solve within ``error_factor`` of SLEPc's error, and 2 MPI ranks equal to 1.
"""

from __future__ import annotations

import numpy as np
import pytest

import firedrake as fd
from pyop2.mpi import COMM_SELF, COMM_WORLD

from fem_ms import Diffusion, cell_field, solve, structured_hierarchy
from fem_ms.coefficients import paper_kle
from fem_ms.gmsfem import KINDS, MultiscaleSpace
from fem_ms.metrics import relative_l2_error

# (coarse, fine) cells per side of the contract's meshes: every neighbourhood kind, seconds per solve
MESHES = {2: (3, 12), 3: (2, 8)}
KAPPA_SEED = 99  # a κ no provider in the tests was trained on


def contract_problem(dim: int, comm=COMM_WORLD, seed: int = KAPPA_SEED):
    """(pair, problem): diffusion with f = 1 on a KLE κ of the contract's mesh in ``dim`` D."""
    coarse, fine = MESHES[dim]
    pair = structured_hierarchy(coarse, fine, dim=dim, quadrilateral=True, comm=comm)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((fine,) * dim).sample_kappa(seed))
    return pair, Diffusion(V, kappa, 1.0)


class BasisProviderContract:
    """Checks every BasisProvider must pass. Subclasses set the attributes and the factory."""

    #: local basis functions per neighbourhood in every check
    n_basis = 3
    #: dimensions the provider supports
    dims = (2, 3)
    #: GMsFEM's L2 error with this provider is at most this factor times SLEPc's, per dimension
    error_factor: dict = {2: 1.0 + 1e-8, 3: 1.0 + 1e-8}
    #: whether the vectors are S_i-orthonormal (spectral providers); otherwise only independent
    s_orthonormal = True
    #: whether the provider returns the local eigenvalues
    eigenvalues = True
    #: relative agreement of 2 MPI ranks with 1 (a float32 provider's batches differ with the
    #: partition, and float32 products with the batch size)
    parallel_rtol = 1e-8

    def make_provider(self, dim: int, comm):
        """A fresh provider for ``dim``-D meshes of :data:`MESHES` (fine mesh on ``comm``) with
        :attr:`n_basis` functions."""
        raise NotImplementedError

    def _space(self, dim: int, comm=COMM_WORLD):
        pair, problem = contract_problem(dim, comm)
        return MultiscaleSpace.for_problem(problem, pair, self.n_basis, basis=self.make_provider(dim, comm)), problem

    def test_a_basis_of_the_right_shape_for_every_owned_neighbourhood_of_every_kind(self, contract_dim):
        dim = contract_dim
        space, _ = self._space(dim)
        bases = space.bases
        assert sorted(bases.vectors) == sorted(space.owned)
        for i in space.owned:
            assert np.shape(bases.vectors[i]) == (space.neighbourhoods[i].size, self.n_basis)
        kinds = {space.neighbourhoods[i].kind for i in space.owned}
        if COMM_WORLD.size == 1:
            assert kinds == set(KINDS[dim])
        if self.eigenvalues:
            for i in space.owned:
                lam = np.asarray(bases.eigenvalues[i])
                assert lam.shape == (self.n_basis,) and np.all(np.diff(lam) >= 0) and abs(lam[0]) < 1e-8 * lam[-1]

    def test_finite_independent_vectors_whose_span_holds_the_constant(self, contract_dim):
        dim = contract_dim
        space, _ = self._space(dim)
        for i in space.owned:
            phi = np.asarray(space.bases.vectors[i])
            assert np.all(np.isfinite(phi))
            _, S = space.patches.local_matrices(i)
            gram = phi.T @ S @ phi
            if self.s_orthonormal:
                np.testing.assert_allclose(gram, np.eye(self.n_basis), atol=1e-8)
            assert np.linalg.cond(gram) < 1e8, i
            # the λ = 0 eigenfunction of every κ: GMsFEM's space then holds the coarse hat χ_i
            one = np.ones(len(phi))
            coefficients = np.linalg.solve(gram, phi.T @ S @ one)
            residual = one - phi @ coefficients
            assert np.sqrt(residual @ S @ residual / (one @ S @ one)) < 1e-6, i

    def test_the_same_bases_twice(self, contract_dim):
        dim = contract_dim
        first, _ = self._space(dim)
        again = self.make_provider(dim, COMM_WORLD).local_bases(first.patches, self.n_basis)
        for i in first.owned:
            np.testing.assert_array_equal(np.asarray(again.vectors[i]), np.asarray(first.bases.vectors[i]))

    def test_bad_input_is_refused(self, contract_dim):
        dim = contract_dim
        space, _ = self._space(dim)
        provider = self.make_provider(dim, COMM_WORLD)
        for bad in (0, -1):
            with pytest.raises(ValueError, match="n_basis"):
                provider.local_bases(space.patches, bad)
        pair, problem = contract_problem(dim)
        smallest = min(n.size for n in space.neighbourhoods)
        with pytest.raises(ValueError, match=f"n_basis={smallest + 1} exceeds"):
            MultiscaleSpace.for_problem(problem, pair, smallest + 1, basis=provider)

    def test_gmsfem_error_within_the_stated_factor_of_slepc(self, contract_dim):
        dim = contract_dim
        space, problem = self._space(dim)
        reference = solve(problem).u
        error = relative_l2_error(space.reduce(problem).solve().u, reference)
        slepc = MultiscaleSpace.for_problem(problem, space.pair, self.n_basis, provider_options={"progress": False})
        slepc_error = relative_l2_error(slepc.reduce(problem).solve().u, reference)
        assert np.isfinite(error) and error <= self.error_factor[dim] * slepc_error, (error, slepc_error)

    @pytest.mark.parallel(nprocs=2)
    def test_two_ranks_give_the_serial_solution(self):
        for dim in self.dims:
            distributed, problem = self._space(dim, COMM_WORLD)
            u = distributed.reduce(problem).solve().u
            serial, serial_problem = self._space(dim, COMM_SELF)
            u_serial = serial.reduce(serial_problem).solve().u
            norms = [fd.norm(u), fd.norm(u, "H1"), fd.assemble(problem.kappa * u * fd.dx)]
            serial_norms = [fd.norm(u_serial), fd.norm(u_serial, "H1"),
                            fd.assemble(serial_problem.kappa * u_serial * fd.dx)]
            np.testing.assert_allclose(norms, serial_norms, rtol=self.parallel_rtol)
