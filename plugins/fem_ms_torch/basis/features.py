"""Network inputs on a patch's vertex grid: log κ (averaged from the cells) and coordinates."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["INNER_PRODUCTS", "patch_features", "n_features", "vertex_mass", "energy_embedding", "rayleigh_quotient",
           "self_energy_embedding"]


INNER_PRODUCTS = ("energy", "euclidean", "kappa")
"""Inner products in which a loss can compare bases: the energy A + τS of the local problem
(:func:`energy_embedding`), Euclidean on the vertex grid, the lumped κ-mass (:func:`vertex_mass`)."""


def n_features(dim: int) -> int:
    """Channels of :func:`patch_features` in ``dim`` dimensions: log κ and the ``dim`` vertex coordinates."""
    return 1 + dim


def patch_features(kappa: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """``(batch, *cells)`` κ → ``(batch, 1 + dim, *vertices)``: standardised log κ at the vertices (mean of
    the adjacent cells) and the vertex coordinates scaled to [0, 1] per axis."""
    dim = kappa.dim() - 1
    log_k = ((torch.log(kappa) - mean) / std)[:, None]
    pad = [1, 1] * dim
    padded = F.pad(log_k, pad, mode="replicate")
    pool = F.avg_pool2d if dim == 2 else F.avg_pool3d
    vertex = pool(padded, kernel_size=2, stride=1)
    axes = [torch.linspace(0.0, 1.0, n, dtype=kappa.dtype, device=kappa.device) for n in vertex.shape[2:]]
    coords = torch.stack(torch.meshgrid(*axes, indexing="ij"))[None].expand(kappa.shape[0], -1, *vertex.shape[2:])
    return torch.cat([vertex, coords], dim=1)


def vertex_mass(kappa: torch.Tensor) -> torch.Tensor:
    """``(batch, *cells)`` κ → ``(batch, *vertices)``: the lumped κ-weighted mass of every vertex,
    Σ κ_c / 2^dim over its adjacent cells (in units of a cell's volume), the diagonal of GMsFEM's
    S matrix with mass lumping on a Q1 patch grid."""
    dim = kappa.dim() - 1
    padded = F.pad(kappa[:, None], [1, 1] * dim)  # zeros outside: boundary vertices have fewer cells
    pool = F.avg_pool2d if dim == 2 else F.avg_pool3d
    return pool(padded, kernel_size=2, stride=1)[:, 0]


GAUSS = (0.5 - 0.5 / 3 ** 0.5, 0.5 + 0.5 / 3 ** 0.5)  # 2-point Gauss rule on [0, 1]


def energy_embedding(u: torch.Tensor, kappa: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """``(batch, n, *vertices)`` Q1 functions → (batch, n, features) whose Euclidean inner product is
    the (A + τS) inner product of GMsFEM's local problem on the patch.

    A is the κ-weighted stiffness ∫ κ ∇u·∇v and S the lumped κ-mass (:func:`vertex_mass`), both on
    unit cells (the cell size only rescales τ). The features are √κ_c·∂_a u at the 2^dim Gauss
    points of every cell (exact for Q1), then √(τ m_v)·u at the vertices; ``tau`` is (batch,).
    Losses computed on the features (:mod:`.losses`) measure subspaces in that energy, which is
    the norm of GMsFEM's error estimate, instead of pointwise on the grid.
    """
    return _embed(_gradient_features(u, kappa), u, _mass(kappa), tau)


def rayleigh_quotient(u: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """Σ_j a(u_j, u_j) / Σ_j s(u_j, u_j) per batch entry (A, S as in :func:`energy_embedding`):
    for eigenvectors the mean of their eigenvalues, weighted by their S-norms."""
    return _rayleigh(_gradient_features(u, kappa), u, _mass(kappa))


def self_energy_embedding(u: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(energy_embedding(u, kappa, τ), τ)`` with τ = ``rayleigh_quotient(u, kappa)``, the
    gradient features computed once (the true basis in every training step)."""
    gradient, mass = _gradient_features(u, kappa), _mass(kappa)
    tau = _rayleigh(gradient, u, mass)
    return _embed(gradient, u, mass, tau), tau


def _mass(kappa: torch.Tensor) -> torch.Tensor:
    return vertex_mass(kappa)[:, None].flatten(2)


def _rayleigh(gradient: torch.Tensor, u: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    return gradient.pow(2).sum(dim=(1, 2)) / (u.flatten(2).pow(2) * mass).sum(dim=(1, 2))


def _embed(gradient: torch.Tensor, u: torch.Tensor, mass: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    return torch.cat([gradient, u.flatten(2) * (tau[:, None, None] * mass).sqrt()], dim=2)


def _gradient_features(u: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """√κ_c·∂_a u at the Gauss points of every unit cell, with their quadrature weights, flattened."""
    dim = kappa.dim() - 1
    grid = u.shape[2:]
    parts = []
    for a in range(dim):
        d = u.narrow(2 + a, 1, grid[a] - 1) - u.narrow(2 + a, 0, grid[a] - 1)  # ∂_a u, constant along a
        for b in range(dim):  # multilinear in the other axes: their two Gauss coordinates
            if b != a:
                lo, hi = d.narrow(2 + b, 0, grid[b] - 1), d.narrow(2 + b, 1, grid[b] - 1)
                d = torch.stack([(1 - g) * lo + g * hi for g in GAUSS], dim=-1)  # (…, cells, …, Gauss)
        # weight of each (cell, Gauss coordinates of the other axes): κ_c · 2^-(dim-1)
        scale = (kappa / 2 ** (dim - 1)).sqrt().reshape(kappa.shape[0], 1, *kappa.shape[1:], *([1] * (dim - 1)))
        parts.append((d * scale).flatten(2))
    return torch.cat(parts, dim=2)
