"""The seam between GMsFEM and whatever makes its local bases: ``BasisProvider``.

A provider gets a :class:`~fem_ms.gmsfem.patches.PatchSet` (the neighbourhoods, κ, the local
matrices on demand, and κ on each neighbourhood's canonically oriented patch grid) and returns
:class:`LocalBases`. The
SLEPc eigen-solver (:class:`SpectralBasisProvider`, name ``"slepc"``) and learned providers
(``fem_ms_torch``) return the same thing, and everything downstream is shared.

Providers are found by name in the ``fem_ms.basis_providers`` entry-point group. Every provider
of fem-ms and its plugin accepts the options of :class:`ProviderOptions` (``progress``, ``verify``,
``tolerance``, ``max_iterations``, ``field_fraction``), so that a caller (``fem-ms solve
--provider-option``) can set them whichever provider it names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from ..checks import check_int, check_real
from ..plugins import BASIS_PROVIDERS, registered
from .patches import PatchSet
from .spectral import SpectralSolver
from .verification import DEFAULT_FIELD_FRACTION, DEFAULT_TOLERANCE, POLICIES, relative_residuals, verify_bases

__all__ = ["BasisProvider", "LocalBases", "ProviderOptions", "SpectralBasisProvider", "TruncatedBasisProvider",
           "get_provider", "provider_from", "available_providers", "ENTRY_POINT_GROUP"]

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = BASIS_PROVIDERS


@dataclass
class LocalBases:
    """Local bases of the neighbourhoods a rank handles.

    Attributes
    ----------
    vectors : dict int → ndarray (size_i, n_basis)
        For neighbourhood i, its basis vectors φ_j on ω_i's DOFs (in :attr:`Neighbourhood.dofs`
        order), one per column.
    eigenvalues : dict int → ndarray (n_basis,), optional
        Where the provider knows them.
    timings : dict
        Wall seconds by phase.
    residuals : dict int → ndarray (n_basis,), optional
        The a-posteriori indicator's relative Ritz residuals per neighbourhood
        (:mod:`.verification`), where the provider computed them; the multiscale space computes
        the missing ones from the local matrices.
    verification : VerificationReport, optional
        What a provider's verification checked, flagged, refined and recomputed.
    """

    vectors: dict
    eigenvalues: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    residuals: dict = field(default_factory=dict)
    verification: object = None

    def indicator(self, i: int) -> float:
        """η_i: the largest relative Ritz residual of neighbourhood i."""
        return float(np.max(self.residuals[i]))


@runtime_checkable
class BasisProvider(Protocol):
    """Makes local bases for GMsFEM.

    ``local_bases(patches, n_basis)`` returns a :class:`LocalBases` with, for every
    neighbourhood in ``patches.owned``, an array (size_i, n_basis) of linearly independent
    vectors on ω_i's DOFs (their span is what matters: GMsFEM multiplies them by χ_i).
    """

    name: str

    def local_bases(self, patches: PatchSet, n_basis: int) -> LocalBases:
        """The local bases of the neighbourhoods this rank owns.

        Parameters
        ----------
        patches : PatchSet
            The neighbourhoods (``patches.owned`` on this rank) with their local matrices.
        n_basis : int
            Basis functions per neighbourhood (N_bf).

        Returns
        -------
        LocalBases
            For every ``i`` in ``patches.owned``, an array (size_i, n_basis) on ω_i's DOFs.
        """
        ...


class ProviderOptions:
    """The options every basis provider accepts: a progress bar, and the a-posteriori check of
    its bases (:mod:`.verification`) with what to do where it fails.

    A provider subclasses it, passes these options to ``__init__`` and returns
    ``self.verified(patches, bases, n_basis)`` from ``local_bases``.

    Parameters
    ----------
    progress : bool
        Show a progress bar (rank 0), where the provider's work is long enough to have one.
    verify : {"off", "warn", "refine", "fallback"}
        What to do with neighbourhoods whose indicator exceeds ``tolerance``: nothing (the check
        is skipped), warn, refine them by subspace iteration, or recompute them with SLEPc
        (:func:`.verification.verify_bases`). The bases' ``verification`` reports what was done.
    tolerance : float
        The indicator's threshold.
    max_iterations : int
        The refinement's iteration budget per neighbourhood (``verify="refine"``).
    field_fraction : float
        When more than this fraction of all neighbourhoods is flagged, every neighbourhood is
        treated (refine, fallback).
    """

    name = "provider"

    def __init__(self, progress: bool = True, verify: str = "warn", tolerance: float = DEFAULT_TOLERANCE,
                 max_iterations: int = 3, field_fraction: float = DEFAULT_FIELD_FRACTION):
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be true or false, got {progress!r}")
        if verify not in POLICIES:
            raise ValueError(f"verify must be one of {POLICIES}, got {verify!r}")
        self.progress, self.verify = progress, verify
        self.tolerance = check_real("tolerance", tolerance, positive=True)
        self.max_iterations = check_int("max_iterations", max_iterations)
        self.field_fraction = check_real("field_fraction", field_fraction, low=0.0, high=1.0)

    def verified(self, patches: PatchSet, bases: LocalBases, n_basis: int, spans: dict | None = None) -> LocalBases:
        """``bases`` after the check and policy of this provider's options (collective over
        ``patches.comm``: every rank calls it). ``spans``: wider spaces to refine from."""
        checked, _ = verify_bases(patches, bases, n_basis, self.verify, self.tolerance, self.max_iterations,
                                  provider=self.name, spans=spans, field_fraction=self.field_fraction)
        return checked


class SpectralBasisProvider(ProviderOptions):
    """GMsFEM's spectral bases: the n smallest eigenpairs of A_i φ = λ S_i φ, by SLEPc.

    Eigenvectors are S_i-orthonormal, and signed so that their largest entry is positive
    (deterministic across runs and partitions). Their indicator comes with the eigensolve at
    the cost of two sparse products per neighbourhood, and is ~0 for converged eigenpairs: the
    default ``verify="warn"`` flags an eigensolve that options made too loose
    (``-gmsfem_eps_tol``).

    Parameters
    ----------
    eps_options : dict, optional
        SLEPc/PETSc options overriding :data:`fem_ms.gmsfem.spectral.DEFAULT_EPS_OPTIONS`,
        e.g. ``{"st_pc_factor_mat_solver_type": "mumps"}``.
    options_prefix : str
        Prefix for command-line overrides (default ``gmsfem_``).
    progress, verify, tolerance, max_iterations, field_fraction
        As for every provider (:class:`ProviderOptions`); ``progress`` shows a bar over the
        neighbourhoods.
    """

    name = "slepc"

    def __init__(self, eps_options: dict | None = None, options_prefix: str = "gmsfem_",
                 progress: bool = True, verify: str = "warn", tolerance: float = DEFAULT_TOLERANCE,
                 max_iterations: int = 3, field_fraction: float = DEFAULT_FIELD_FRACTION):
        if eps_options is not None and not isinstance(eps_options, dict):
            raise TypeError(f"eps_options must be a dict of SLEPc/PETSc options, got {eps_options!r}")
        if not isinstance(options_prefix, str):
            raise TypeError(f"options_prefix must be a string, got {options_prefix!r}")
        super().__init__(progress, verify, tolerance, max_iterations, field_fraction)
        self.solver = SpectralSolver(eps_options, options_prefix)

    def local_bases(self, patches: PatchSet, n_basis: int) -> LocalBases:
        """The ``n_basis`` smallest eigenpairs of every owned neighbourhood, with their relative
        residuals (:meth:`BasisProvider.local_bases`)."""
        _check_n_basis(n_basis)
        vectors, values, residuals = {}, {}, {}
        bar = tqdm(patches.owned, desc="GMsFEM local eigenproblems (SLEPc)", unit="nbh", leave=False,
                   disable=not self.progress or patches.comm.rank != 0)
        for i in bar:
            A, S = patches.local_matrices(i)
            lam, phi = self.solver.solve(A, S, n_basis, name=f"neighbourhood {i} ({patches.neighbourhoods[i].kind})")
            signs = np.sign(phi[np.argmax(np.abs(phi), axis=0), np.arange(n_basis)])
            vectors[i] = phi * signs
            values[i] = lam
            residuals[i] = relative_residuals(A, S, phi, lam)
        return self.verified(patches, LocalBases(vectors, values, dict(self.solver.timings), residuals), n_basis)


class TruncatedBasisProvider(ProviderOptions):
    """The first ``n_basis`` vectors of bases computed before, for any ``n_basis`` up to theirs.

    Spectral bases are nested (the N smallest eigenpairs contain the n < N smallest), so one
    eigensolve at the largest N_bf of a study serves every smaller one. The bases must be for
    the same κ and neighbourhoods as the space they are used in (GMsFEM cannot check that).

    Parameters
    ----------
    bases : LocalBases
        E.g. ``MultiscaleSpace(..., n_basis=12).bases``.
    progress, verify, tolerance, max_iterations, field_fraction
        As for every provider (:class:`ProviderOptions`). The check computes the indicator of
        the truncated vectors from the local matrices: ~0 when they are eigenvectors of this κ,
        large when the bases were made for another κ. The truncation shows no progress bar.
    """

    name = "truncated"

    def __init__(self, bases: LocalBases, progress: bool = True, verify: str = "warn",
                 tolerance: float = DEFAULT_TOLERANCE, max_iterations: int = 3,
                 field_fraction: float = DEFAULT_FIELD_FRACTION):
        if not isinstance(bases, LocalBases):
            raise TypeError(f"bases must be LocalBases, got {type(bases).__name__}")
        super().__init__(progress, verify, tolerance, max_iterations, field_fraction)
        self.bases = bases

    def local_bases(self, patches: PatchSet, n_basis: int) -> LocalBases:
        """The first ``n_basis`` vectors (and eigenvalues) of the stored bases of every owned
        neighbourhood (:meth:`BasisProvider.local_bases`)."""
        _check_n_basis(n_basis)
        vectors, values = {}, {}
        for i in patches.owned:
            if i not in self.bases.vectors:
                raise ValueError(f"the truncated bases hold no basis for neighbourhood {i}")
            phi = np.asarray(self.bases.vectors[i])
            if phi.shape[1] < n_basis:
                raise ValueError(f"the truncated bases hold {phi.shape[1]} vectors for neighbourhood {i}, "
                                 f"fewer than n_basis={n_basis}")
            vectors[i] = phi[:, :n_basis]
            if i in self.bases.eigenvalues:
                values[i] = np.asarray(self.bases.eigenvalues[i])[:n_basis]
        return self.verified(patches, LocalBases(vectors, values), n_basis)


def _check_n_basis(n_basis) -> None:
    check_int("n_basis", n_basis)


def available_providers() -> list[str]:
    """Names registered in the ``fem_ms.basis_providers`` entry-point group."""
    return [ep.name for ep in registered(ENTRY_POINT_GROUP)]


def provider_from(basis, provider_options: dict | None = None) -> BasisProvider:
    """:func:`get_provider` with the constructor's keyword arguments as a dict (checked)."""
    if provider_options is not None and not isinstance(provider_options, dict):
        raise TypeError(f"provider_options must be a dict of the provider's keyword arguments, "
                        f"got {provider_options!r}")
    if provider_options and not isinstance(basis, str):
        raise ValueError("provider_options configure a provider named by basis=; this basis is a provider object")
    return get_provider(basis, **(provider_options or {}))


def get_provider(basis, **kwargs) -> BasisProvider:
    """A provider by name (entry points) or the provider object itself."""
    if not isinstance(basis, str):
        if not isinstance(basis, BasisProvider):
            raise TypeError(f"basis must be a provider name or a BasisProvider, got {basis!r}")
        return basis
    matches = [ep for ep in registered(ENTRY_POINT_GROUP) if ep.name == basis]
    if not matches:  # perhaps installed since the entry points were last read
        matches = [ep for ep in registered(ENTRY_POINT_GROUP, refresh=True) if ep.name == basis]
    if not matches:
        raise ValueError(f"unknown basis provider {basis!r}; available: {available_providers()} "
                         f"(providers register in the {ENTRY_POINT_GROUP!r} entry-point group)")
    return matches[0].load()(**kwargs)
