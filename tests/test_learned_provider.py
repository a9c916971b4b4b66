"""The provider contract (tests/provider_contract.py) for the learned provider (fem_ms_torch).

Small GMsFEM-NO models, one per dimension, trained here on SLEPc bases of the contract's mesh
(with the oversampling + Rayleigh–Ritz recipe of the benchmarks) and checked on a κ they were not
trained on. Their error factor against SLEPc is what such small models reach, not a target.
"""

import pytest

from pyop2.mpi import COMM_SELF

from .provider_contract import MESHES, BasisProviderContract

# dim → (training samples, epochs, width): a few seconds of training each on one core
TRAINING = {2: (24, 30, 12), 3: (8, 8, 8)}


@pytest.fixture(scope="session")
def learned_checkpoints(tmp_path_factory):
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms_torch.basis.train import train_basis

    root = tmp_path_factory.mktemp("learned-provider")
    checkpoints = {}
    for dim, (samples, epochs, width) in TRAINING.items():
        coarse, fine = MESHES[dim]
        config = GMsFEMBasisConfig(name=f"basis{dim}d", samples=samples, dim=dim, fine=fine, coarse=coarse,
                                   n_basis=BasisProviderContract.n_basis, train_fraction=1.0)
        data = generate(config, root, comm=COMM_SELF, progress=False)
        checkpoints[dim] = train_basis(data, root / f"model{dim}d.pt", epochs=epochs, width=width, depth=2, modes=4,
                                       batch_size=8, oversample=2, progress=False, device="cpu")
    return checkpoints


class TestLearnedBasisProvider(BasisProviderContract):
    """The network's bases as they come (no a-posteriori check)."""

    error_factor = {2: 1.5, 3: 1.5}
    s_orthonormal = False
    eigenvalues = False
    parallel_rtol = 1e-6  # float32 inference
    options = {"verify": "off"}

    @pytest.fixture(autouse=True)
    def _checkpoints(self, learned_checkpoints):
        self.checkpoints = learned_checkpoints

    def make_provider(self, dim, comm):
        from fem_ms_torch.basis.provider import LearnedBasisProvider

        return LearnedBasisProvider(self.checkpoints[dim], device="cpu", **self.options)


class TestVerifiedLearnedBasisProvider(TestLearnedBasisProvider):
    """With its default verification, the learned provider's GMsFEM error stays within 10 % of
    SLEPc's whatever its network does."""

    error_factor = {2: 1.10, 3: 1.10}
    options = {}


def test_the_learned_provider_takes_the_common_options(learned_checkpoints):
    from fem_ms.gmsfem import ProviderOptions
    from fem_ms_torch.basis.provider import LearnedBasisProvider

    assert issubclass(LearnedBasisProvider, ProviderOptions)
    provider = LearnedBasisProvider(learned_checkpoints[2], device="cpu", progress=False, verify="refine",
                                    tolerance=0.05, max_iterations=2, field_fraction=0.5)
    assert (provider.progress, provider.verify, provider.tolerance, provider.max_iterations,
            provider.field_fraction) == (False, "refine", 0.05, 2, 0.5)
    with pytest.raises(ValueError, match=r"verify must be one of \('off', 'warn', 'refine', 'fallback'\)"):
        LearnedBasisProvider(learned_checkpoints[2], verify="maybe")
    with pytest.raises(TypeError, match="progress must be true or false, got 'yes'"):
        LearnedBasisProvider(learned_checkpoints[2], progress="yes")


def test_fem_ms_solve_with_the_learned_provider(learned_checkpoints):
    """``fem-ms solve --basis learned --checkpoint PATH --provider-option ...`` as a user runs it."""
    import os
    import subprocess
    import sys

    fine, coarse = str(MESHES[2][1]), str(MESHES[2][0])
    base = [sys.executable, "-m", "fem_ms.cli", "-q", "solve", "--fine", fine, "--coarse", coarse, "--n-basis",
            str(BasisProviderContract.n_basis), "--basis", "learned", "--checkpoint", str(learned_checkpoints[2])]
    proc = subprocess.run([*base, "--provider-option", 'verify="fallback"', "--provider-option", "tolerance=0.1"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"GMsFEM (learned, N_bf={BasisProviderContract.n_basis}," in proc.stdout and "relative L2" in proc.stdout
    proc = subprocess.run([*base, "--provider-option", "precision=float16"], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert proc.returncode == 2 and "precision must be one of ('float32', 'bfloat16'), got 'float16'" in proc.stderr


@pytest.mark.parametrize("policy", ["warn", "refine", "fallback"])
def test_out_of_distribution_fields_are_flagged_and_mended(learned_checkpoints, policy, family="channels"):
    """A κ from a family the model never saw: the indicator flags neighbourhoods; refine and
    fallback bring the GMsFEM error to within 10 % of SLEPc's, warn says which ones are suspect."""
    import numpy as np

    from fem_ms import Diffusion, cell_field, solve
    from fem_ms.field_families import family as field_family
    from fem_ms.gmsfem import MultiscaleSpace
    from fem_ms.gmsfem.verification import LearnedBasisWarning, ritz_check
    from fem_ms.metrics import relative_l2_error
    from fem_ms_torch.basis.provider import LearnedBasisProvider

    from .provider_contract import contract_problem

    pair, problem = contract_problem(2)
    coarse, fine = MESHES[2]
    kappa = cell_field(pair.fine, field_family(family).sample((fine, fine), 7))
    problem = Diffusion(problem.V, kappa, 1.0)
    reference = solve(problem).u
    n = BasisProviderContract.n_basis

    def error(basis):
        space = MultiscaleSpace.for_problem(problem, pair, n, basis=basis)
        return relative_l2_error(space.reduce(problem).solve().u, reference), space

    slepc, _ = error("slepc")
    unchecked, space = error(LearnedBasisProvider(learned_checkpoints[2], device="cpu", verify="off"))
    flagged = [i for i in space.owned
               if ritz_check(*space.patches.local_matrices(i), space.bases.vectors[i]).indicator > 0.1]
    assert unchecked > 1.1 * slepc and flagged  # the model is wrong here, and the indicator sees where
    provider = LearnedBasisProvider(learned_checkpoints[2], device="cpu", verify=policy, tolerance=0.1,
                                    max_iterations=10)
    if policy == "warn":
        with pytest.warns(LearnedBasisWarning, match="fail the a-posteriori check"):
            warned, space = error(provider)
        assert warned == pytest.approx(unchecked, rel=1e-6)
        assert sorted(space.bases.verification.unresolved) == sorted(flagged)
        return
    mended, space = error(provider)
    report = space.bases.verification
    assert sorted(report.flagged) == sorted(flagged) and not report.unresolved
    assert mended <= 1.10 * slepc, (mended, slepc, unchecked)
    assert np.isfinite(space.timings[f"verify_{policy}"])


@pytest.mark.parametrize("dim", [2, 3])
def test_grid_indicator_equals_the_one_from_the_local_matrices(dim):
    """The learned provider's indicator, computed on the patch grids in torch, is the core's
    (fem_ms.gmsfem.verification), computed from Firedrake's local matrices."""
    import numpy as np
    import torch

    from fem_ms.gmsfem import MultiscaleSpace
    from fem_ms.gmsfem.verification import ritz_check
    from fem_ms_torch.basis.rayleigh_ritz import rayleigh_ritz, ritz_residuals

    from .provider_contract import contract_problem

    pair, problem = contract_problem(dim)
    space = MultiscaleSpace.for_problem(problem, pair, 3, provider_options={"progress": False})
    rng = np.random.default_rng(0)
    for i in space.owned[:6]:
        patches = space.patches
        shape = tuple(n + 1 for n in patches.kappa_patch(i).shape)
        phi = space.bases.vectors[i] + 0.05 * rng.standard_normal(space.bases.vectors[i].shape)
        grid = np.zeros((3,) + shape)
        grid[(slice(None),) + patches.grid_positions(i)] = phi.T
        kappa = torch.as_tensor(patches.kappa_patch(i))[None]
        basis, values = rayleigh_ritz(torch.as_tensor(grid)[None], kappa, 3)
        ours = ritz_residuals(basis, values, kappa)[0].numpy()
        A, S = patches.local_matrices(i)
        np.testing.assert_allclose(ours, ritz_check(A, S, phi).residuals, rtol=1e-5)  # float32 on the grid


@pytest.mark.parametrize("verify", ["off", "fallback"])
def test_batched_passes_of_any_size_give_the_same_space(learned_checkpoints, verify):
    """``max_batch`` bounds the memory of the batched passes, not their result: one patch per pass
    gives the bases (and the check's verdicts) of one pass per kind; a bad size is named."""
    import numpy as np

    from fem_ms.gmsfem import MultiscaleSpace
    from fem_ms_torch.basis.provider import LearnedBasisProvider

    from .provider_contract import contract_problem

    pair, problem = contract_problem(2)
    n = BasisProviderContract.n_basis
    spaces = [MultiscaleSpace.for_problem(problem, pair, n, basis=LearnedBasisProvider(
        learned_checkpoints[2], device="cpu", verify=verify, max_batch=size)) for size in (1, 3, 4096)]
    for space in spaces[:2]:
        assert sorted(space.bases.vectors) == sorted(spaces[-1].bases.vectors)
        for i, vectors in spaces[-1].bases.vectors.items():
            np.testing.assert_allclose(space.bases.vectors[i], vectors, rtol=1e-5, atol=1e-6)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="max_batch"):
            LearnedBasisProvider(learned_checkpoints[2], device="cpu", max_batch=bad)
