"""The a-posteriori indicator of local bases and the verification policies (warn, refine, fallback)."""

import numpy as np
import pytest

from fem_ms import solve
from fem_ms.gmsfem import LocalBases, MultiscaleSpace
from fem_ms.gmsfem.verification import LearnedBasisWarning, refine, relative_residuals, ritz_check, verify_bases
from fem_ms.metrics import relative_l2_error

from .provider_contract import contract_problem

N = 3


@pytest.fixture(scope="module")
def slepc():
    pair, problem = contract_problem(2)
    return MultiscaleSpace.for_problem(problem, pair, N, provider_options={"progress": False}), problem


def _angles(a, b, S):
    """Largest principal angle between span a and span b in the S-inner product."""
    L = np.linalg.cholesky(S.toarray())
    qa, _ = np.linalg.qr(L.T @ a)
    qb, _ = np.linalg.qr(L.T @ b)
    return np.arccos(np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False).min(), -1, 1))


def test_exact_eigenpairs_have_a_vanishing_indicator_and_slepc_reports_it(slepc):
    space, _ = slepc
    for i in space.owned:
        A, S = space.patches.local_matrices(i)
        check = ritz_check(A, S, space.bases.vectors[i])
        np.testing.assert_allclose(check.values, space.bases.eigenvalues[i], rtol=1e-8, atol=1e-10)
        assert check.indicator < 1e-7
        np.testing.assert_allclose(space.bases.residuals[i], relative_residuals(A, S, space.bases.vectors[i],
                                                                                 space.bases.eigenvalues[i]))
        assert space.bases.indicator(i) < 1e-7


def test_indicator_grows_with_the_distance_to_the_eigenspace_and_is_scale_invariant(slepc):
    space, _ = slepc
    i = next(n.index for n in space.neighbourhoods if n.kind == "full")
    A, S = space.patches.local_matrices(i)
    phi = space.bases.vectors[i]
    noise = np.random.default_rng(0).standard_normal(phi.shape)
    noise /= np.sqrt(np.einsum("ij,ij->j", noise, S @ noise))
    indicators = [ritz_check(A, S, phi + eps * noise).indicator for eps in (1e-6, 1e-4, 1e-2, 1e-1)]
    assert np.all(np.diff(indicators) > 0) and indicators[0] < 1e-4 and indicators[-1] > 1e-2
    # κ → 100 κ scales A and S alike: the same indicator
    assert ritz_check(100 * A, 100 * S, phi + 1e-2 * noise).indicator == pytest.approx(indicators[2], rel=1e-10)


def test_refinement_recovers_the_spectral_space_from_a_perturbed_one(slepc):
    space, _ = slepc
    for i in space.owned[:4]:
        A, S = space.patches.local_matrices(i)
        phi = space.bases.vectors[i]
        rng = np.random.default_rng(i)
        start = phi + 0.2 * rng.standard_normal(phi.shape) * np.abs(phi).max()
        before = ritz_check(A, S, start)
        check, iterations = refine(A, S, start, N, tolerance=1e-6, max_iterations=20)
        assert before.indicator > 1e-2 and check.indicator <= 1e-6 and 1 <= iterations <= 20
        assert _angles(check.vectors, phi, S) < 1e-5
        # a wider start (the provider's oversampled span) converges in fewer iterations
        wider = np.column_stack([start, rng.standard_normal((len(phi), 4))])
        _, fewer = refine(A, S, wider, N, tolerance=1e-6, max_iterations=20)
        assert fewer <= iterations


class Perturbed:
    """SLEPc's bases with noise on some neighbourhoods: a stand-in for a learned provider that is
    wrong where its training data did not reach (its own indicators are left to the space)."""

    name = "perturbed"

    def __init__(self, exact, bad, scale=0.3):
        self.exact, self.bad, self.scale = exact, set(bad), scale

    def local_bases(self, patches, n_basis):
        rng = np.random.default_rng(1)
        vectors = {}
        for i in patches.owned:
            phi = self.exact.vectors[i]
            vectors[i] = phi + (self.scale * rng.standard_normal(phi.shape) * np.abs(phi).max() if i in self.bad else 0)
        return LocalBases(vectors)


@pytest.mark.parametrize("policy", ["warn", "refine", "fallback"])
def test_policies_on_a_provider_that_is_wrong_on_some_neighbourhoods(slepc, policy):
    space, problem = slepc
    bad = [4, 5]
    reference = solve(problem).u
    slepc_error = relative_l2_error(space.reduce(problem).solve().u, reference)
    perturbed = MultiscaleSpace.for_problem(problem, space.pair, N, basis=Perturbed(space.bases, bad))
    assert all(perturbed.bases.indicator(i) > 0.1 for i in bad)
    assert all(perturbed.bases.indicator(i) < 1e-7 for i in perturbed.owned if i not in bad)
    unverified = relative_l2_error(perturbed.reduce(problem).solve().u, reference)
    if policy == "warn":
        with pytest.warns(LearnedBasisWarning, match=r"2 of 16 neighbourhoods fail.*: [45] \(full"):
            _, report = verify_bases(perturbed.patches, perturbed.bases, N, policy, tolerance=0.05,
                                     provider="perturbed")
        assert report.flagged == bad and report.unresolved == bad and not report.refined
        return
    bases, report = verify_bases(perturbed.patches, perturbed.bases, N, policy, tolerance=1e-6, max_iterations=20)
    assert report.flagged == bad and report.checked == 16 and not report.unresolved
    assert (sorted(report.refined) if policy == "refine" else report.fallen_back) == bad
    assert report.timings[policy] > 0

    class Given:
        name = "given"

        def local_bases(self, patches, n_basis):
            return bases

    verified = MultiscaleSpace.for_problem(problem, space.pair, N, basis=Given())
    error = relative_l2_error(verified.reduce(problem).solve().u, reference)
    assert unverified > 1.2 * slepc_error and error == pytest.approx(slepc_error, rel=1e-5)


def test_bad_policies_are_refused(slepc):
    space, _ = slepc
    with pytest.raises(ValueError, match="verify must be one of"):
        verify_bases(space.patches, space.bases, N, "maybe")
    with pytest.raises(ValueError, match="tolerance must be a positive finite number"):
        verify_bases(space.patches, space.bases, N, "warn", tolerance=0)


def test_a_field_with_many_flagged_neighbourhoods_is_treated_everywhere(slepc):
    space, problem = slepc
    perturbed = MultiscaleSpace.for_problem(problem, space.pair, N, basis=Perturbed(space.bases, [4, 5, 6, 9]))
    bases, report = verify_bases(perturbed.patches, perturbed.bases, N, "fallback", tolerance=1e-6,
                                 field_fraction=0.2)
    assert report.field_flagged and report.fallen_back == perturbed.owned and "the field as a whole" in report.summary()
    _, report = verify_bases(perturbed.patches, perturbed.bases, N, "fallback", tolerance=1e-6, field_fraction=0.25)
    assert not report.field_flagged and report.fallen_back == [4, 5, 6, 9]
