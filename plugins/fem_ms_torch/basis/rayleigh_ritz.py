"""Rayleigh–Ritz: GMsFEM's n lowest local eigenfunctions from a larger predicted space.

A network that predicts K > n functions only has to make its span *contain* the span of the n
lowest eigenfunctions of the local problem A φ = λ S φ (a one-sided subspace loss), which is
easier than matching it. The Rayleigh–Ritz method then extracts the best n-dimensional
subspace from the K functions with the local matrices projected onto them: the n lowest
eigenpairs of the K × K problem (Vᵀ A V) c = θ (Vᵀ S V) c. If the K functions span the true
eigenfunctions, Rayleigh–Ritz returns them exactly (min–max: a function S-orthogonal to them
has a Rayleigh quotient ≥ λ_{n+1}).

Both Gram matrices are computed on the patch's vertex grid from κ, exactly for the Q1
discretisation on unit cells: A = ∫ κ ∇u·∇v and the consistent S = ∫ κ u v
(:func:`projected_matrices`). The cell size h scales A against S by h⁻², which
changes the Ritz values but not their order, so the selected subspace does not depend on it.
Written here (not SciPy's ``eigh``) because it runs batched, in torch, beside the network, on
the patches of every neighbourhood at once; no sparse matrix is assembled.
"""

from __future__ import annotations

import itertools

import torch

__all__ = ["apply_matrices", "operator_diagonals", "projected_matrices", "rayleigh_ritz", "ritz_residuals"]

CHUNK_BYTES = 3 << 19
PRECISIONS = {"float64": torch.float64, "float32": torch.float32}


def projected_matrices(u: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (batch, K, K) Gram matrices (Vᵀ A V, Vᵀ S V) of K Q1 functions on each patch.

    On a unit cell the Q1 matrices are Kronecker products of the 1D ones, k₁ = d dᵀ (d = (1, −1))
    and m₁ = (I + 1 1ᵀ)/6, so S_e = 6^-dim Σ_T ⊗_a (1 1ᵀ if a ∈ T else I) over the subsets T
    of the axes, and A_e = Σ_a k₁ on axis a ⊗ m₁ on the others likewise. Each term is a
    weighted Gram matrix of a derived field: u summed over the two ends of each cell along the
    axes in T (1 1ᵀ), differenced along a (k₁), kept at the vertices along the other axes (I),
    weighted by κ summed over the cells that share each such edge, face or vertex. That takes
    2^dim (mass) and dim·2^(dim−1) (stiffness) elementwise products and batched GEMMs, without
    the per-Gauss-point arrays of :func:`~.features.energy_embedding`, which cost several times
    more at inference.
    """
    a = s = 0
    for ops, stiffness, weight in _kronecker_terms(kappa):
        field = u
        for axis, op in enumerate(ops):
            field = _along(field, 2 + axis, op)
        field = field.flatten(2)
        gram = (field * weight.flatten(1)[:, None, :]) @ field.transpose(1, 2)
        if stiffness:
            a = a + gram
        else:
            s = s + gram
    return a, s


def _kronecker_terms(kappa: torch.Tensor):
    """The terms of the Q1 stiffness and mass on unit cells (:func:`projected_matrices`): for
    each, the operation per axis (``"vertex"``, ``"sum"`` or ``"diff"`` of a cell's two ends),
    whether it belongs to the stiffness, and its weight on the derived points (κ summed over the
    cells that share each edge, face or vertex, times the term's factor 6^-(vertex/sum axes))."""
    dim = kappa.dim() - 1
    for ops in itertools.product(("vertex", "sum", "diff"), repeat=dim):
        diffs = ops.count("diff")
        if diffs > 1:
            continue
        weight = kappa
        for axis, op in enumerate(ops):
            if op == "vertex":  # the weight of a vertex line: κ of the cells on both sides
                weight = _along(torch.nn.functional.pad(weight, _pad_spec(dim, axis)), 1 + axis, "sum")
        yield ops, bool(diffs), (6.0 ** -(dim - diffs)) * weight


def apply_matrices(u: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A u, S u) on each patch's vertex grid: the Q1 stiffness and consistent mass on unit cells
    applied to the ``(batch, K, *vertices)`` functions ``u``, by the same Kronecker terms as
    :func:`projected_matrices` (each term's derived field, weighted, mapped back by the
    transposed sums and differences)."""
    a = s = torch.zeros_like(u)
    for ops, stiffness, weight in _kronecker_terms(kappa):
        field = u
        for axis, op in enumerate(ops):
            field = _along(field, 2 + axis, op)
        field = field * weight[:, None]
        for axis, op in enumerate(ops):
            field = _along_transposed(field, 2 + axis, op)
        if stiffness:
            a = a + field
        else:
            s = s + field
    return a, s


def operator_diagonals(kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(diag A, diag S) on each patch's vertex grid ``(batch, *vertices)``: the Kronecker terms of
    :func:`projected_matrices` have ±1 coefficients, so each term's diagonal is its weight mapped
    back by the transposed sums along every non-vertex axis."""
    a = s = 0
    for ops, stiffness, weight in _kronecker_terms(kappa):
        weight = weight[:, None]
        for axis, op in enumerate(ops):
            weight = _along_transposed(weight, 2 + axis, "sum" if op != "vertex" else op)
        if stiffness:
            a = a + weight[:, 0]
        else:
            s = s + weight[:, 0]
    return a, s


def ritz_residuals(basis: torch.Tensor, values: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """The a-posteriori indicator's relative residuals ‖A y_j − θ_j S y_j‖_{D⁻¹} / √θ_n,
    D = diag(A + θ_n S), of S-normalised Ritz pairs (``basis`` ``(batch, n, *vertices)``, ``values``
    (batch, n)) on the patches (:mod:`fem_ms.gmsfem.verification`; the same figure from the grid,
    without assembling the local matrices). Returns (batch, n).

    Computed cell by cell in float32: the residual r = Σ_c κ_c (K_e − θ_j M_e) y_c gathers each
    cell's 2^d corner values once, applies the unit-cell Q1 element matrices, and scatters back;
    fewer passes over the fields than :func:`apply_matrices`' Kronecker terms."""
    dim = kappa.dim() - 1
    stiffness, mass = (torch.as_tensor(m, dtype=torch.float32, device=basis.device) for m in _q1_elements(dim))
    y, k = basis.float(), kappa.float()
    corners = list(itertools.product((0, 1), repeat=dim))  # lexicographic, as the element matrices
    cells = tuple(k.shape[1:])
    local = torch.stack([y[(..., *(slice(o, o + n) for o, n in zip(c, cells)))] for c in corners], dim=2)
    theta = values.float()
    elementwise = (torch.einsum("ij,bkj...->bki...", stiffness, local)
                   - theta[(...,) + (None,) * (dim + 1)] * torch.einsum("ij,bkj...->bki...", mass, local))
    elementwise = elementwise * k[:, None, None]
    residual = torch.zeros_like(y)
    for i, c in enumerate(corners):
        residual[(..., *(slice(o, o + n) for o, n in zip(c, cells)))] += elementwise[:, :, i]
    diag_a, diag_s = operator_diagonals(kappa)
    scale = values[:, -1:].abs().double().clamp_min(torch.finfo(torch.float64).tiny)            # θ_n, (batch, 1)
    jacobi = (diag_a + scale[(...,) + (None,) * (dim - 1)] * diag_s).float().flatten(1)[:, None]
    norms = (residual.flatten(2).square() / jacobi).sum(dim=2).double().sqrt()
    return norms / scale.sqrt()


def _q1_elements(dim: int):
    """The unit-cell Q1 stiffness and mass (:func:`fem_ms.gmsfem.patches.grid_matrices`'s)."""
    from fem_ms.gmsfem.patches import _q1_elements as elements

    return elements(dim)


def _along_transposed(x: torch.Tensor, axis: int, op: str) -> torch.Tensor:
    """The transpose of :func:`_along`: from the n − 1 cells back to the n vertices of ``axis``."""
    if op == "vertex":
        return x
    spec = [0, 0] * (x.dim() - axis)
    low, high = spec.copy(), spec.copy()
    position = x.dim() - 1 - axis  # F.pad lists the last axis first
    low[2 * position], high[2 * position + 1] = 1, 1
    # (sum)ᵀ g_j = g_{j−1} + g_j, (diff)ᵀ g_j = g_{j−1} − g_j, with g beyond the ends zero
    shifted, kept = torch.nn.functional.pad(x, low), torch.nn.functional.pad(x, high)
    return shifted + kept if op == "sum" else shifted - kept


def _along(x: torch.Tensor, axis: int, op: str) -> torch.Tensor:
    if op == "vertex":
        return x
    n = x.shape[axis]
    lo, hi = x.narrow(axis, 0, n - 1), x.narrow(axis, 1, n - 1)
    return hi + lo if op == "sum" else hi - lo


def _pad_spec(dim: int, axis: int) -> list[int]:
    """F.pad's list for one zero cell on both sides of spatial ``axis`` of a ``(batch, *cells)`` array."""
    spec = [0, 0] * dim
    position = dim - 1 - axis  # F.pad lists the last axis first
    spec[2 * position] = spec[2 * position + 1] = 1
    return spec


def rayleigh_ritz(u: torch.Tensor, kappa: torch.Tensor, n: int, rcond: float = 1e-10,
                  precision: str = "float64") -> tuple[torch.Tensor, torch.Tensor]:
    """The n lowest Ritz pairs of the local eigenproblem in the span of K ≥ n functions.

    Parameters
    ----------
    u : ``(batch, K, *vertices)`` tensor
        The functions on each patch's vertex grid.
    kappa : ``(batch, *cells)`` tensor
        κ on the patch's cells.
    n : int
        Ritz pairs to keep.
    rcond : float
        Directions of the span whose S-norm² is below ``rcond`` times the largest are dropped
        (nearly dependent functions), so that the reduced problem stays well conditioned; with
        ``precision="float32"``, those whose QR diagonal is below √rcond times the largest.
    precision : {"float64", "float32"}
        Arithmetic of the K × K Gram matrices, the cost of the method. ``"float64"`` computes
        them from ``u`` itself: the Ritz vectors are S-orthonormal to rounding. ``"float32"``
        first replaces ``u`` by an orthonormal basis of its span (Householder QR, stable in
        float32 however nearly dependent the functions are; the Gram matrix of an untrained
        network's raw predictions can be conditioned beyond float32) and computes the Gram
        matrices of that basis in float32, which is cheaper. The selected subspace then differs
        from the float64 one by rounding-level SALs, and the vectors are S-orthonormal to
        float32 accuracy (tested against SciPy; measured figures in docs/gmsfem.md).

    Returns
    -------
    basis : ``(batch, n, *vertices)`` float64 tensor
        S-orthonormal Ritz vectors, by increasing Ritz value.
    values : (batch, n) float64 tensor
        The Ritz values on unit cells (≥ the true eigenvalues, by min–max).
    """
    if u.dim() != kappa.dim() + 1 or u.shape[0] != kappa.shape[0] \
            or tuple(u.shape[2:]) != tuple(s + 1 for s in kappa.shape[1:]):
        raise ValueError(f"u must be (batch, K, *vertices) on the vertex grid of kappa (batch, *cells); "
                         f"got {tuple(u.shape)} and {tuple(kappa.shape)}")
    if not 1 <= n <= u.shape[1]:
        raise ValueError(f"cannot keep {n} Ritz vectors of {u.shape[1]} functions")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype == torch.float64:  # the functions as given: S-orthonormal Ritz vectors to rounding
        v = u.double()
    else:  # an orthonormal basis of the span, less the directions the functions barely reach
        q, r = torch.linalg.qr(u.float().flatten(2).transpose(1, 2))
        reach = r.diagonal(dim1=1, dim2=2).abs()
        q = q * (reach > rcond ** 0.5 * reach.amax(dim=1, keepdim=True))[:, None, :]  # zero: dropped below
        v = q.transpose(1, 2).reshape(u.shape)
    kappa = kappa.to(dtype)
    # CHUNK_BYTES of functions at a time: the derived fields then stay in cache (faster than all at
    # once; docs/gmsfem.md)
    step = max(1, CHUNK_BYTES // (v.element_size() * u[0].numel()))
    chunks = [projected_matrices(v[i:i + step], kappa[i:i + step]) for i in range(0, len(v), step)]
    a, s = torch.cat([c[0] for c in chunks]).double(), torch.cat([c[1] for c in chunks]).double()
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
    basis = (coefficients @ v.double().flatten(2)).reshape(u.shape[0], n, *u.shape[2:])
    return basis, values[:, :n]
