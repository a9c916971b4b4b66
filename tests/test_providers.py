"""The provider contract (tests/provider_contract.py) for the core's providers: SLEPc, and the
truncation of a larger SLEPc basis. The learned provider's run is in tests/test_gmsfem_no.py."""

import pytest

from pyop2.mpi import COMM_WORLD

from fem_ms.gmsfem import MultiscaleSpace, SpectralBasisProvider, TruncatedBasisProvider

from .provider_contract import BasisProviderContract, contract_problem


class TestSpectralBasisProvider(BasisProviderContract):
    def make_provider(self, dim, comm):
        return SpectralBasisProvider(progress=False)


class TestTruncatedBasisProvider(BasisProviderContract):
    """The first N_bf of SLEPc's N_bf + 3 eigenvectors: the same space as SLEPc's own N_bf."""

    def make_provider(self, dim, comm):
        pair, problem = contract_problem(dim, comm)
        larger = MultiscaleSpace.for_problem(problem, pair, self.n_basis + 3, provider_options={"progress": False})
        return TruncatedBasisProvider(larger.bases)

    def test_more_functions_than_held_are_refused(self):
        pair, problem = contract_problem(2)
        provider = self.make_provider(2, COMM_WORLD)
        with pytest.raises(ValueError, match="hold 6 vectors for neighbourhood 0, fewer than n_basis=7"):
            MultiscaleSpace.for_problem(problem, pair, 7, basis=provider)
