"""The multiscale space: ψ_j^i = χ_i φ_j^i and the restriction matrix R as a PETSc Mat.

Row ``i * n_basis + j`` of R holds ψ_j^i on the fine DOFs; rows are distributed over the ranks
in the blocks of neighbourhoods each rank handled, columns follow the fine space's PETSc layout.
Dirichlet DOFs are dropped from every row, so every multiscale function satisfies the homogeneous
Dirichlet condition exactly.
"""

from __future__ import annotations

import numpy as np

from firedrake.petsc import PETSc

from .neighbourhoods import FineGeometry, Neighbourhood
from .providers import LocalBases

__all__ = ["restriction_matrix", "check_bases"]


def check_bases(bases: LocalBases, neighbourhoods: list[Neighbourhood], mine, n_basis: int,
                provider_name: str) -> None:
    """Raise ValueError naming the neighbourhood if a provider returned the wrong thing."""
    for i in mine:
        if i not in bases.vectors:
            raise ValueError(f"basis provider {provider_name!r} returned no basis for neighbourhood {i}")
        phi = np.asarray(bases.vectors[i])
        expected = (neighbourhoods[i].size, n_basis)
        if phi.shape != expected:
            raise ValueError(
                f"basis provider {provider_name!r} returned an array of shape {phi.shape} for "
                f"neighbourhood {i} ({neighbourhoods[i].kind}); expected {expected} "
                f"(DOFs of the neighbourhood × n_basis)")
        if not np.all(np.isfinite(phi)):
            raise ValueError(f"basis provider {provider_name!r} returned non-finite values for "
                             f"neighbourhood {i}")


def restriction_matrix(bases: LocalBases, neighbourhoods: list[Neighbourhood], mine,
                       n_basis: int, geometry: FineGeometry, V, comm, cache: dict | None = None) -> PETSc.Mat:
    """R (N_v·n_basis × fine DOFs) from the local bases of this rank's neighbourhoods.

    ``cache``: a dict kept with ``geometry`` (GMsFEM keeps one per mesh pair) in which the
    κ-independent sparsity pattern is stored on first use, so that later samples only gather values.
    """
    indptr, indices, rows = _pattern(neighbourhoods, mine, n_basis, geometry, {} if cache is None else cache)
    data = [(neighbourhoods[i].chi[r, None] * np.asarray(bases.vectors[i])[r]).T.ravel()
            for i, r in zip(mine, rows)]
    data = np.concatenate(data) if data else np.empty(0)
    R = PETSc.Mat().createAIJ(((len(mine) * n_basis, len(neighbourhoods) * n_basis), (V.dof_dset.size, V.dim())),
                              csr=(indptr, indices, data), comm=comm)
    R.assemble()
    return R


def _pattern(neighbourhoods, mine, n_basis, geometry, cache):
    """(indptr, column indices, per-neighbourhood rows of ω_i's DOFs) of R, cached by (mine, n_basis).

    Each neighbourhood contributes n_basis rows with the same columns: its non-Dirichlet DOFs in
    ascending order (PETSc's CSR wants sorted columns); ``rows`` picks them from ω_i's DOF order.
    """
    key = ("restriction pattern", tuple(mine), n_basis)
    if key not in cache:
        indptr, indices, rows = [0], [], []
        for i in mine:
            dofs = neighbourhoods[i].dofs
            keep = np.flatnonzero(~geometry.dirichlet[dofs])
            r = keep[np.argsort(dofs[keep])]
            rows.append(r)
            indices.append(np.tile(dofs[r], n_basis))
            indptr.extend(indptr[-1] + len(r) * np.arange(1, n_basis + 1))
        indices = np.concatenate(indices).astype(PETSc.IntType) if indices else np.empty(0, PETSc.IntType)
        cache[key] = (np.asarray(indptr, dtype=PETSc.IntType), indices, rows)
    return cache[key]
