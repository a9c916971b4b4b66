"""An a-posteriori check of local bases, and what a provider does where it fails.

**The indicator.** For neighbourhood ω_i with local problem A_i φ = λ S_i φ (κ-weighted Neumann
stiffness and mass) and a provider's vectors Φ_i, take the Ritz pairs (θ_j, y_j) of the pencil on
span Φ_i (y_j S_i-normalised, θ_1 ≤ … ≤ θ_n) and their residuals r_j = A_i y_j − θ_j S_i y_j.
The indicator of ω_i is the largest relative residual in a Jacobi-scaled dual norm,

    η_i = max_j ‖r_j‖_{D_i⁻¹} / ‖y_n‖_{A_i} ,    D_i = diag(A_i + θ_n S_i),  ‖y_n‖_{A_i} = √θ_n ,

which needs no factorization: two sparse products and a diagonal per vector. It is a lower
bound, up to a constant, of the energy dual norm of the residual: every P1/Q1 element matrix
K_e satisfies K_e ≤ 2^d diag(K_e) (its diagonally scaled form has entries of modulus ≤ 1 and
2^d rows), so with K_i = A_i + θ_n S_i, K_i ≤ 2^d D_i and ‖r‖_{K_i⁻¹} ≥ 2^{-d/2} ‖r‖_{D_i⁻¹}.
η_i is invariant under κ → cκ and under the cell size (it is a ratio of energy-type norms), so
one tolerance serves every neighbourhood, kind and resolution. A dual norm of the mass (what a
Rayleigh quotient's error is measured in) was tried first: it weighs a residual's rough part by
the largest local eigenvalues, and ranked good and bad learned spaces far less apart
(docs/gmsfem.md).

**What it bounds.** ‖r_j‖_{K_i⁻¹} is, up to the gap between θ_n and the next eigenvalue, the
energy-norm distance of y_j from the invariant subspace of the n smallest eigenvalues (the
residual bounds of Kahan and the sin θ theorem of Davis and Kahan in the K-inner product;
Knyazev 1997 for blocks), and GMsFEM's error bound (Efendiev, Galvis & Hou 2013),
‖u − u_ms‖_a ≤ C Λ*^{-1/2} ‖κ^{-1/2} f‖ with Λ* = min_i λ^{ω_i}_{n+1} the first neglected local
eigenvalue, holds for the spectral spaces; a learned space within energy angle ε of them adds a
term of order ε. A large η_i therefore certifies that the learned space of ω_i is far from the
spectral one in energy (η is a lower bound, so no false alarms beyond the constant); a small η_i
is strong evidence but no proof (smooth residuals can hide from a diagonal scaling). How well it
predicts the GMsFEM error is measured in ``benchmarks.learned_trust``.

**The policies** (:data:`POLICIES`): ``"off"``; ``"warn"`` (a warning naming the flagged
neighbourhoods); ``"refine"`` (a few iterations of shift-and-invert block subspace iteration
started from the provider's vectors, on the flagged neighbourhoods only, until the indicator
passes or the iteration budget is spent); ``"fallback"`` (SLEPc on the flagged neighbourhoods).
When more than ``field_fraction`` of all neighbourhoods are flagged, the field as a whole is
taken as out of the provider's distribution, and refine/fallback treat every neighbourhood:
there the check's pass on the others is not evidence (a learned space can miss an eigenvector
of a nearly repeated pair while its Ritz pairs are accurate, which no residual sees).
A :class:`VerificationReport` says what was checked, flagged, refined and replaced, and the time
of each part.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

from ..checks import check_int, check_real

__all__ = ["POLICIES", "DEFAULT_TOLERANCE", "DEFAULT_FIELD_FRACTION", "RitzCheck", "VerificationReport",
           "LearnedBasisWarning", "ritz_check", "refine", "relative_residuals", "verify_bases"]

POLICIES = ("off", "warn", "refine", "fallback")
#: the indicator threshold of the providers' verification, and the share of flagged neighbourhoods
#: beyond which a whole field counts as out of a provider's distribution (chosen in docs/gmsfem.md)
DEFAULT_TOLERANCE = 0.2
DEFAULT_FIELD_FRACTION = 0.15


class LearnedBasisWarning(UserWarning):
    """Local bases whose indicator exceeds the tolerance (policy ``"warn"``, or ``"refine"``
    when the iteration budget did not bring it down), from whichever provider: named for the
    learned bases it was made for."""


@dataclass
class RitzCheck:
    """Ritz pairs of a local problem on the span of a provider's vectors, with their residuals.

    Attributes
    ----------
    values : ndarray (n,)
        Ritz values θ_1 ≤ … ≤ θ_n.
    vectors : ndarray (size, n)
        S-orthonormal Ritz vectors.
    residuals : ndarray (n,)
        ‖A y_j − θ_j S y_j‖_{D⁻¹} / √θ_n, D = diag(A + θ_n S).
    """

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray

    @property
    def indicator(self) -> float:
        """The largest relative residual η."""
        return float(self.residuals.max())


def ritz_check(A: sp.spmatrix, S: sp.spmatrix, phi: np.ndarray, n: int | None = None) -> RitzCheck:
    """The n lowest Ritz pairs of (A, S) on span ``phi`` (columns) and their relative residuals.

    Directions of the span that S barely sees (nearly dependent columns) are dropped. ``n``
    defaults to the number of columns.
    """
    phi = np.asarray(phi, dtype=float)
    n = phi.shape[1] if n is None else n
    AP, SP = A @ phi, S @ phi
    a, s = phi.T @ AP, phi.T @ SP
    s_values, s_vectors = np.linalg.eigh(0.5 * (s + s.T))
    keep = s_values > 1e-12 * s_values[-1]
    if int(keep.sum()) < n:
        raise ValueError(f"the vectors span {int(keep.sum())} independent directions, fewer than {n}")
    w = s_vectors[:, keep] / np.sqrt(s_values[keep])
    theta, c = np.linalg.eigh(w.T @ (0.5 * (a + a.T)) @ w)
    c = w @ c[:, :n]
    theta = theta[:n]
    return RitzCheck(theta, phi @ c, _relative_residuals(AP @ c, SP @ c, theta, A, S))


def relative_residuals(A: sp.spmatrix, S: sp.spmatrix, vectors: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The indicator's relative residuals ‖A y_j − θ_j S y_j‖_{D⁻¹} / √θ_n, D = diag(A + θ_n S),
    of S-normalised eigenvector approximations y_j (columns of ``vectors``) with values θ_j: for
    pairs a provider computed itself (SLEPc's eigenpairs)."""
    return _relative_residuals(A @ vectors, S @ vectors, np.asarray(values, dtype=float), A, S)


def _relative_residuals(AY, SY, theta, A, S) -> np.ndarray:
    residual = AY - SY * theta
    scale = max(abs(theta[-1]), np.finfo(float).tiny)
    jacobi = A.diagonal() + scale * S.diagonal()
    norms = np.sqrt(np.einsum("ij,ij->j", residual, residual / jacobi[:, None]))
    return norms / np.sqrt(scale)


def refine(A: sp.spmatrix, S: sp.spmatrix, phi: np.ndarray, n: int, tolerance: float, max_iterations: int,
           shift: float = -1e-3) -> tuple[RitzCheck, int]:
    """Shift-and-invert block subspace iteration from span ``phi`` (K ≥ n columns), with
    Rayleigh–Ritz after each step, until the n lowest Ritz pairs' indicator is ≤ ``tolerance``.

    Each iteration multiplies the block by (A − σS)⁻¹ S (one sparse LU factorization, reused):
    the component along eigenvector j shrinks relative to eigenvector k ≤ n by
    ``|λ_k − σ|/|λ_j − σ| ≤ (λ_n − σ)/(λ_{K+1} − σ)`` per iteration, so a predicted block already
    close to the invariant subspace, and wider than n (an oversampled prediction), needs one or
    two; a block narrower than 2n keeps its previous iterate beside the new one. Written here
    (not SciPy's ``lobpcg``) because without a preconditioner LOBPCG converges
    slowly on high-contrast κ, and with the factorization as its preconditioner it is this
    iteration with more vectors.

    Returns the final check and the number of iterations done (0 if ``phi`` already passed).
    """
    check = ritz_check(A, S, phi, n)
    if check.indicator <= tolerance:
        return check, 0
    solve = scipy.sparse.linalg.splu((A - shift * S).tocsc()).solve
    block, iteration = np.asarray(phi, dtype=float), 0
    while iteration < max_iterations:
        iteration += 1
        image = solve(S @ block)
        # a block of fewer than 2n vectors keeps its previous iterate too: the rate of vector n is
        # then set by λ_{2n+1}, not λ_{n+1}, at no extra factorization
        block = np.column_stack([image, block]) if block.shape[1] < 2 * n else image
        block, _ = scipy.linalg.qr(block, mode="economic")  # keeps the columns independent
        block = block[:, :max(2 * n, phi.shape[1])]
        check = ritz_check(A, S, block, n)
        if check.indicator <= tolerance:
            break
    return check, iteration


@dataclass
class VerificationReport:
    """What a verification did on one rank's neighbourhoods.

    Attributes
    ----------
    policy : str
    tolerance : float
    checked : int
        Neighbourhoods whose indicator was computed.
    indicators : dict int → float
        Their indicator η_i as the provider returned them.
    flagged : list of int
        Those above the tolerance.
    refined : dict int → int
        Refined neighbourhoods and their iteration counts.
    fallen_back : list of int
        Neighbourhoods whose bases SLEPc recomputed.
    unresolved : list of int
        Flagged neighbourhoods still above the tolerance at the end (warned about).
    field_flagged : bool
        Whether the flagged fraction (over all ranks) exceeded ``field_fraction``, so that every
        neighbourhood was treated.
    timings : dict
        Wall seconds: ``indicator``, ``refine``, ``fallback``.
    """

    policy: str
    tolerance: float
    checked: int = 0
    indicators: dict = field(default_factory=dict)
    flagged: list = field(default_factory=list)
    refined: dict = field(default_factory=dict)
    fallen_back: list = field(default_factory=list)
    unresolved: list = field(default_factory=list)
    field_flagged: bool = False
    timings: dict = field(default_factory=lambda: {"indicator": 0.0, "refine": 0.0, "fallback": 0.0})

    def summary(self) -> str:
        """One line: how many neighbourhoods were checked, flagged, refined and replaced."""
        return (f"{self.checked} neighbourhoods checked (policy {self.policy!r}, tolerance {self.tolerance:g}): "
                f"{len(self.flagged)} flagged{' (the field as a whole)' if self.field_flagged else ''}, "
                f"{len(self.refined)} refined, {len(self.fallen_back)} recomputed by SLEPc, {len(self.unresolved)} "
                f"still above the tolerance")


def verify_bases(patches, bases, n_basis: int, policy: str = "warn", tolerance: float = 0.1,
                 max_iterations: int = 3, provider: str = "provider", spans: dict | None = None,
                 field_fraction: float = 1.0):
    """Check ``bases`` (a :class:`~.providers.LocalBases`) and apply ``policy`` where the indicator
    exceeds ``tolerance`` (everywhere when more than ``field_fraction`` of the neighbourhoods of
    all ranks do); returns (LocalBases, :class:`VerificationReport`).

    The indicators come from ``bases.residuals`` where the provider computed them, else from the
    local matrices (:func:`ritz_check`; the κ-weighted element matrices are assembled then).
    ``spans`` (neighbourhood → (size, K) array, K ≥ n_basis) are wider spaces to refine from,
    e.g. an oversampled prediction before its Rayleigh–Ritz reduction; default the bases.
    """
    from .providers import LocalBases, SpectralBasisProvider

    if policy not in POLICIES:
        raise ValueError(f"verify must be one of {POLICIES}, got {policy!r}")
    tolerance = check_real("tolerance", tolerance, positive=True)
    max_iterations = check_int("max_iterations", max_iterations)
    report = VerificationReport(policy, tolerance)
    if policy == "off":
        return LocalBases(bases.vectors, bases.eigenvalues, bases.timings, bases.residuals, report), report
    t0 = time.perf_counter()
    residuals = dict(bases.residuals)
    for i in patches.owned:
        if i not in residuals:
            A, S = patches.local_matrices(i)
            residuals[i] = ritz_check(A, S, bases.vectors[i], n_basis).residuals
    report.checked = len(patches.owned)
    report.indicators = {i: float(np.max(residuals[i])) for i in patches.owned}
    report.flagged = [i for i in patches.owned if not report.indicators[i] <= tolerance]
    field_fraction = check_real("field_fraction", field_fraction, low=0.0, high=1.0)
    comm = patches.comm
    flagged_share = comm.allreduce(len(report.flagged)) / max(comm.allreduce(report.checked), 1)
    if flagged_share > field_fraction:
        report.field_flagged = True
        report.flagged = list(patches.owned)
    report.timings["indicator"] = time.perf_counter() - t0
    vectors, values = dict(bases.vectors), dict(bases.eigenvalues)
    unresolved = list(report.flagged)
    if policy == "refine" and report.flagged:
        t0 = time.perf_counter()
        unresolved = []
        for i in report.flagged:
            A, S = patches.local_matrices(i)
            start = (spans or {}).get(i, bases.vectors[i])
            check, iterations = refine(A, S, start, n_basis, tolerance, max_iterations)
            vectors[i], values[i], residuals[i] = check.vectors, check.values, check.residuals
            report.refined[i] = iterations
            if not check.indicator <= tolerance:
                unresolved.append(i)
        report.timings["refine"] = time.perf_counter() - t0
    elif policy == "fallback" and report.flagged:
        t0 = time.perf_counter()
        # verify="off": only the ranks with flagged neighbourhoods get here, and the check's
        # field fraction is a collective over all of them
        slepc = SpectralBasisProvider(progress=False, verify="off")
        exact = slepc.local_bases(_restricted(patches, report.flagged), n_basis)
        vectors.update(exact.vectors)
        values.update(exact.eigenvalues)
        residuals.update(exact.residuals)
        report.fallen_back = list(report.flagged)
        unresolved = []
        report.timings["fallback"] = time.perf_counter() - t0
    report.unresolved = unresolved
    if unresolved:
        worst = sorted(unresolved, key=lambda i: -report.indicators[i])
        listed = ", ".join(f"{i} ({patches.neighbourhoods[i].kind}, η = {report.indicators[i]:.3g})"
                           for i in worst[:8])
        more = f" and {len(worst) - 8} more" if len(worst) > 8 else ""
        field = (f" ({100 * flagged_share:.0f} % of all neighbourhoods: the field looks out of the provider's "
                 f"distribution)" if report.field_flagged else "")
        warnings.warn(f"basis provider {provider!r}: the local bases of {len(worst)} of {report.checked} "
                      f"neighbourhoods fail the a-posteriori check (indicator above {tolerance:g}){field}: "
                      f"{listed}{more}. "
                      f"The GMsFEM solution may be far less accurate than with the exact local eigenpairs; use "
                      f"verify='fallback' (SLEPc) or 'refine'", LearnedBasisWarning, stacklevel=3)
    timings = {**bases.timings, **{f"verify_{k}": v for k, v in report.timings.items()}}
    return LocalBases(vectors, values, timings, residuals, report), report


def _restricted(patches, indices):
    """The same patches, with only ``indices`` to provide for."""
    from .patches import PatchSet

    restricted = PatchSet(patches.layout, indices, patches.kappa, patches.V)
    restricted._elements = patches._elements  # assembled already (or on first use, once)
    return restricted
