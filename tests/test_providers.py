"""The provider contract (tests/provider_contract.py) for the core's providers: SLEPc, and the
truncation of a larger SLEPc basis; the options every provider takes (progress, verification).
The learned provider's run is in tests/test_gmsfem_no.py."""

import inspect

import pytest

from pyop2.mpi import COMM_WORLD

from fem_ms import Diffusion, cell_field, solve
from fem_ms.coefficients import paper_kle
from fem_ms.gmsfem import LocalBases, MultiscaleSpace, ProviderOptions, SpectralBasisProvider, TruncatedBasisProvider
from fem_ms.gmsfem.verification import LearnedBasisWarning
from fem_ms.metrics import relative_l2_error
from fem_ms.plugins import BASIS_PROVIDERS, registered

from .provider_contract import MESHES, BasisProviderContract, contract_problem


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


COMMON_OPTIONS = {"progress", "verify", "tolerance", "max_iterations", "field_fraction"}


def test_every_provider_takes_the_common_options():
    """The registered providers (SLEPc; the learned one where the plugin is installed) and the
    truncation accept the same progress and verification keywords, with the same checks."""
    classes = [ep.load() for ep in registered(BASIS_PROVIDERS)] + [TruncatedBasisProvider]
    assert SpectralBasisProvider in classes
    for cls in classes:
        assert issubclass(cls, ProviderOptions), cls
        assert COMMON_OPTIONS <= set(inspect.signature(cls).parameters), cls
    with pytest.raises(ValueError, match=r"verify must be one of \('off', 'warn', 'refine', 'fallback'\)"):
        SpectralBasisProvider(verify="maybe")
    with pytest.raises(TypeError, match="progress must be true or false, got 'no'"):
        SpectralBasisProvider(progress="no")
    with pytest.raises(ValueError, match="tolerance must be a positive"):
        TruncatedBasisProvider(LocalBases({}), tolerance=-1.0)


def test_slepc_bases_pass_their_check_at_no_extra_cost():
    pair, problem = contract_problem(2)
    space = MultiscaleSpace.for_problem(problem, pair, 3, provider_options={"progress": False})
    report = space.bases.verification
    assert report.policy == "warn" and report.checked == len(space.owned) == 16 and not report.flagged
    assert max(report.indicators.values()) < 1e-8  # exact eigenpairs
    # the residuals come with the eigensolve: the check only reads them
    assert space.timings["verify_indicator"] < 0.2 * space.timings["eigensolve"]
    off = MultiscaleSpace.for_problem(problem, pair, 3, provider_options={"progress": False, "verify": "off"})
    assert off.bases.verification.policy == "off" and not off.bases.verification.checked


@pytest.mark.parametrize("policy", ["warn", "refine", "fallback"])
def test_truncated_bases_of_another_kappa_are_flagged_and_repaired(policy):
    """Bases computed for another κ sample are not eigenvectors of this one: the check of the
    truncation sees it, and refine or fallback bring the error back to SLEPc's."""
    pair, problem = contract_problem(2)
    other = Diffusion(problem.V, cell_field(pair.fine, paper_kle((MESHES[2][1],) * 2).sample_kappa(1)), 1.0)
    foreign = MultiscaleSpace.for_problem(other, pair, 6, provider_options={"progress": False}).bases
    reference = solve(problem).u
    slepc = MultiscaleSpace.for_problem(problem, pair, 3, provider_options={"progress": False})
    slepc_error = relative_l2_error(slepc.reduce(problem).solve().u, reference)
    provider = TruncatedBasisProvider(foreign, verify=policy)
    if policy == "warn":
        with pytest.warns(LearnedBasisWarning, match="basis provider 'truncated': the local bases of 16 of 16"):
            space = MultiscaleSpace.for_problem(problem, pair, 3, basis=provider)
    else:
        space = MultiscaleSpace.for_problem(problem, pair, 3, basis=provider)
    report = space.bases.verification
    assert len(report.flagged) == 16 and min(report.indicators.values()) > report.tolerance
    error = relative_l2_error(space.reduce(problem).solve().u, reference)
    if policy == "warn":
        assert error > 2 * slepc_error and report.unresolved == report.flagged
    elif policy == "refine":
        assert not report.unresolved and error < 1.05 * slepc_error
    else:
        assert report.fallen_back == report.flagged and error == pytest.approx(slepc_error, rel=1e-10)
