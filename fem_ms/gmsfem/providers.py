"""The seam between GMsFEM and whatever makes its local bases: ``BasisProvider``.

A provider gets a :class:`~fem_ms.gmsfem.patches.PatchSet` (the neighbourhoods, κ, the local
matrices on demand, and κ on each neighbourhood's canonically oriented patch grid) and returns
:class:`LocalBases`. The
SLEPc eigen-solver (:class:`SpectralBasisProvider`, name ``"slepc"``) and learned providers
(``fem_ms_torch``) return the same thing, and everything downstream is shared.

Providers are found by name in the ``fem_ms.basis_providers`` entry-point group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from ..checks import check_int
from ..plugins import BASIS_PROVIDERS, registered
from .patches import PatchSet
from .spectral import SpectralSolver
from .verification import relative_residuals

__all__ = ["BasisProvider", "LocalBases", "SpectralBasisProvider", "TruncatedBasisProvider", "get_provider",
           "provider_from", "available_providers", "ENTRY_POINT_GROUP"]

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


class SpectralBasisProvider:
    """GMsFEM's spectral bases: the n smallest eigenpairs of A_i φ = λ S_i φ, by SLEPc.

    Eigenvectors are S_i-orthonormal, and signed so that their largest entry is positive
    (deterministic across runs and partitions).

    Parameters
    ----------
    eps_options : dict, optional
        SLEPc/PETSc options overriding :data:`fem_ms.gmsfem.spectral.DEFAULT_EPS_OPTIONS`,
        e.g. ``{"st_pc_factor_mat_solver_type": "mumps"}``.
    options_prefix : str
        Prefix for command-line overrides (default ``gmsfem_``).
    progress : bool
        Show a progress bar over the neighbourhoods.
    """

    name = "slepc"

    def __init__(self, eps_options: dict | None = None, options_prefix: str = "gmsfem_",
                 progress: bool = True):
        if eps_options is not None and not isinstance(eps_options, dict):
            raise TypeError(f"eps_options must be a dict of SLEPc/PETSc options, got {eps_options!r}")
        if not isinstance(options_prefix, str):
            raise TypeError(f"options_prefix must be a string, got {options_prefix!r}")
        self.solver = SpectralSolver(eps_options, options_prefix)
        self.progress = progress

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
        return LocalBases(vectors, values, dict(self.solver.timings), residuals)


class TruncatedBasisProvider:
    """The first ``n_basis`` vectors of bases computed before, for any ``n_basis`` up to theirs.

    Spectral bases are nested (the N smallest eigenpairs contain the n < N smallest), so one
    eigensolve at the largest N_bf of a study serves every smaller one. The bases must be for
    the same κ and neighbourhoods as the space they are used in (GMsFEM cannot check that).

    Parameters
    ----------
    bases : LocalBases
        E.g. ``MultiscaleSpace(..., n_basis=12).bases``.
    """

    name = "truncated"

    def __init__(self, bases: LocalBases):
        if not isinstance(bases, LocalBases):
            raise TypeError(f"bases must be LocalBases, got {type(bases).__name__}")
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
        return LocalBases(vectors, values)


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
    if not matches:
        raise ValueError(f"unknown basis provider {basis!r}; available: {available_providers()} "
                         f"(providers register in the {ENTRY_POINT_GROUP!r} entry-point group)")
    return matches[0].load()(**kwargs)
