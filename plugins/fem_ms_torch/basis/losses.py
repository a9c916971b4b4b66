"""Subspace losses of GMsFEM-NO (basis sets compared as subspaces, not as arrays).

Inputs are ``(batch, n_basis, points)`` tensors: n_basis functions sampled at the same points
(the patch's vertex grid, flattened). Inner products are ⟨u, v⟩ = Σ_p w_p u_p v_p with optional
point weights ``weight`` (batch, points): without them Euclidean on the grid points (on a
uniform patch grid the L2 inner product up to a constant); with the lumped κ-weighted mass of
:func:`~fem_ms_torch.basis.features.vertex_mass` the S-inner product of the GMsFEM eigenproblem
A φ = λ S φ, in which the spectral bases are orthonormal and GMsFEM's error estimate is stated.

SAL and SAL-PR also take a prediction of K > n_basis functions (an oversampled space, reduced
to n_basis by :func:`~fem_ms_torch.basis.rayleigh_ritz.rayleigh_ritz` at inference): they then
measure how far the true span is from being *contained* in the predicted one, and are zero
exactly when it is.
"""

from __future__ import annotations

import torch

__all__ = ["sal_loss", "sal_pr_loss", "rbfl2_loss", "LOSSES"]


def _weighted(basis: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return basis if weight is None else basis * weight.sqrt()[:, None, :]


def _orthonormal(basis: torch.Tensor) -> torch.Tensor:
    """Q (batch, points, n) with the span of the n functions, from a reduced QR."""
    return torch.linalg.qr(basis.transpose(1, 2), mode="reduced").Q


def sal_loss(pred: torch.Tensor, true: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Subspace alignment loss N_bf − ‖Q_trueᵀ Q_pred‖²_F, averaged over the batch.

    Zero exactly when the spans agree (when the true span lies in the predicted one, for a
    prediction of more functions); invariant to any invertible mixing of either basis.
    """
    _check(pred, true, weight, wider=True)
    pred, true = _weighted(pred, weight), _weighted(true, weight)
    overlap = _orthonormal(true).transpose(1, 2) @ _orthonormal(pred)
    return (true.shape[1] - overlap.pow(2).sum(dim=(1, 2))).mean()


def sal_pr_loss(pred: torch.Tensor, true: torch.Tensor, weight: torch.Tensor | None = None,
                pr_weight: float = 1.0, n_vectors: int = 10,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """SAL + pr_weight × mean projection error of ``n_vectors`` random vectors of the true span."""
    _check(pred, true, weight, wider=True)
    pred, true = _weighted(pred, weight), _weighted(true, weight)
    q_true, q_pred = _orthonormal(true), _orthonormal(pred)
    coeff = torch.randn(true.shape[0], true.shape[1], n_vectors, generator=generator,
                        dtype=true.dtype, device=true.device)
    v = q_true @ coeff
    v = v / v.norm(dim=1, keepdim=True)
    residual = v - q_pred @ (q_pred.transpose(1, 2) @ v)
    projection = residual.pow(2).sum(dim=1).mean()
    overlap = q_true.transpose(1, 2) @ q_pred
    sal = (true.shape[1] - overlap.pow(2).sum(dim=(1, 2))).mean()
    return sal + pr_weight * projection


def rbfl2_loss(pred: torch.Tensor, true: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Sign-invariant relative basis-function L2: Σ_j min‖p_j ∓ t_j‖² / Σ_j ‖t_j‖² (batch mean)."""
    _check(pred, true, weight)
    pred, true = _weighted(pred, weight), _weighted(true, weight)
    plus = (pred - true).pow(2).sum(dim=2)
    minus = (pred + true).pow(2).sum(dim=2)
    return (torch.minimum(plus, minus).sum(dim=1) / true.pow(2).sum(dim=(1, 2))).mean()


def _check(pred, true, weight, wider=False):
    if pred.dim() != 3 or true.dim() != 3 or pred.shape[0] != true.shape[0] or pred.shape[2] != true.shape[2] \
            or pred.shape[1] < true.shape[1] or (pred.shape[1] > true.shape[1] and not wider):
        more = " (pred may have more functions than true)" if wider else ""
        raise ValueError(f"pred and true must both be (batch, n_basis, points){more}; got {tuple(pred.shape)} "
                         f"and {tuple(true.shape)}")
    if pred.shape[1] > pred.shape[2]:
        raise ValueError(f"{pred.shape[1]} basis functions on only {pred.shape[2]} points")
    if weight is not None and weight.shape != (true.shape[0], true.shape[2]):
        raise ValueError(f"weight must be (batch, points) = {(true.shape[0], true.shape[2])}, "
                         f"got {tuple(weight.shape)}")


LOSSES = {"sal": sal_loss, "sal-pr": sal_pr_loss, "rbfl2": rbfl2_loss}
"""The losses by the names ``train_basis(loss=...)`` takes."""
