"""Rayleigh–Ritz: GMsFEM's n lowest local eigenfunctions from a larger predicted space.

A network that predicts K > n functions only has to make its span *contain* the span of the n
lowest eigenfunctions of the local problem A φ = λ S φ (a one-sided subspace loss), which is
easier than matching it. The Rayleigh–Ritz method then extracts the best n-dimensional
subspace from the K functions with the local matrices projected onto them: the n lowest
eigenpairs of the K × K problem (Vᵀ A V) c = θ (Vᵀ S V) c. If the K functions span the true
eigenfunctions, Rayleigh–Ritz returns them exactly (min–max: a function S-orthogonal to them
has a Rayleigh quotient ≥ λ_{n+1}).

Both Gram matrices are computed on the patch's vertex grid from κ, exactly for the Q1
discretisation on unit cells: A = ∫ κ ∇u·∇v (:func:`~.features.energy_embedding`'s gradient
features) and the consistent S = ∫ κ u v, from u at the 2^dim Gauss points of every cell
(exact for products of Q1 functions). The cell size h scales A against S by h⁻², which
changes the Ritz values but not their order, so the selected subspace does not depend on it.
Written here (not SciPy's ``eigh``) because it runs batched, in torch, beside the network, on
the patches of every neighbourhood at once; no sparse matrix is assembled.
"""

from __future__ import annotations

import torch

from .features import GAUSS, gradient_features

__all__ = ["projected_matrices", "rayleigh_ritz"]


def mass_features(u: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """(batch, K, *vertices) Q1 functions → (batch, K, features) whose Euclidean inner product is
    the consistent κ-weighted mass ∫ κ u v on unit cells: √(κ_c / 2^dim)·u at the Gauss points."""
    dim = kappa.dim() - 1
    grid = u.shape[2:]
    values = u
    for a in range(dim):  # the new Gauss axes go to the end, so the spatial axes keep their place
        lo, hi = values.narrow(2 + a, 0, grid[a] - 1), values.narrow(2 + a, 1, grid[a] - 1)
        values = torch.stack([(1 - g) * lo + g * hi for g in GAUSS], dim=-1)
    scale = (kappa / 2 ** dim).sqrt().reshape(kappa.shape[0], 1, *kappa.shape[1:], *([1] * dim))
    return (values * scale).flatten(2)


def projected_matrices(u: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (batch, K, K) Gram matrices (Vᵀ A V, Vᵀ S V) of K functions on each patch."""
    g, m = gradient_features(u, kappa), mass_features(u, kappa)
    return g @ g.transpose(1, 2), m @ m.transpose(1, 2)


def rayleigh_ritz(u: torch.Tensor, kappa: torch.Tensor, n: int,
                  rcond: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """The n lowest Ritz pairs of the local eigenproblem in the span of K ≥ n functions.

    Parameters
    ----------
    u : (batch, K, *vertices) tensor
        The functions on each patch's vertex grid.
    kappa : (batch, *cells) tensor
        κ on the patch's cells.
    n : int
        Ritz pairs to keep.
    rcond : float
        Directions of the span whose S-norm² is below ``rcond`` times the largest are dropped
        (nearly dependent functions), so that the reduced problem stays well conditioned.

    Returns
    -------
    basis : (batch, n, *vertices) tensor
        S-orthonormal Ritz vectors, by increasing Ritz value, in ``u``'s dtype.
    values : (batch, n) tensor
        The Ritz values on unit cells (≥ the true eigenvalues, by min–max).
    """
    if u.dim() != kappa.dim() + 1 or u.shape[0] != kappa.shape[0] \
            or tuple(u.shape[2:]) != tuple(s + 1 for s in kappa.shape[1:]):
        raise ValueError(f"u must be (batch, K, *vertices) on the vertex grid of kappa (batch, *cells); "
                         f"got {tuple(u.shape)} and {tuple(kappa.shape)}")
    if not 1 <= n <= u.shape[1]:
        raise ValueError(f"cannot keep {n} Ritz vectors of {u.shape[1]} functions")
    v = u.double()
    a, s = projected_matrices(v, kappa.double())
    # whiten S on its numerically nonzero part; dropped directions get a Ritz value above all others
    s_values, s_vectors = torch.linalg.eigh(s)
    keep = s_values > rcond * s_values[:, -1:]
    if int(keep.sum(dim=1).min()) < n:
        raise ValueError(f"the predicted functions span fewer than {n} independent directions on some patch")
    w = s_vectors * torch.where(keep, s_values.clamp_min(1e-300).rsqrt(), torch.zeros_like(s_values))[:, None, :]
    reduced = w.transpose(1, 2) @ a @ w
    reduced = 0.5 * (reduced + reduced.transpose(1, 2))
    penalty = reduced.diagonal(dim1=1, dim2=2).abs().amax(dim=1, keepdim=True) + 1.0
    reduced = reduced + torch.diag_embed(torch.where(keep, torch.zeros_like(s_values), 10 * penalty))
    values, vectors = torch.linalg.eigh(reduced)
    coefficients = (w @ vectors[:, :, :n]).transpose(1, 2)            # (batch, n, K)
    basis = (coefficients @ v.flatten(2)).reshape(u.shape[0], n, *u.shape[2:])
    return basis.to(u.dtype), values[:, :n].to(u.dtype)
