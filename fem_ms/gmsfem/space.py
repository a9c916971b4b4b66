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
                       n_basis: int, geometry: FineGeometry, V, comm) -> PETSc.Mat:
    """R (N_v·n_basis × fine DOFs) from the local bases of this rank's neighbourhoods."""
    indptr, indices, data = [0], [], []
    for i in mine:
        nbh = neighbourhoods[i]
        keep = ~geometry.dirichlet[nbh.dofs]
        order = np.argsort(nbh.dofs[keep])
        cols = nbh.dofs[keep][order]
        psi = (nbh.chi[:, None] * np.asarray(bases.vectors[i]))[keep][order]
        for j in range(n_basis):
            indices.append(cols)
            data.append(psi[:, j])
            indptr.append(indptr[-1] + len(cols))
    n_rows_local = len(mine) * n_basis
    n_rows = len(neighbourhoods) * n_basis
    indices = np.concatenate(indices).astype(PETSc.IntType) if indices else np.empty(0, PETSc.IntType)
    data = np.concatenate(data) if data else np.empty(0)
    R = PETSc.Mat().createAIJ(((n_rows_local, n_rows), (V.dof_dset.size, V.dim())),
                              csr=(np.asarray(indptr, dtype=PETSc.IntType), indices, data), comm=comm)
    R.assemble()
    return R
