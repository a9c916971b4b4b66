"""An independent implementation: plain numpy/scipy P1 assembly and solve of the same problem."""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import firedrake as fd

from fem_ms import Diffusion, solve
from fem_ms.coefficients import cell_field, paper_kle
from fem_ms.solvers import assemble_system


def scipy_p1_diffusion(points, triangles, kappa_per_triangle, f_const):
    """Textbook P1 assembly: K_T = κ_T |T| G Gᵀ with G the gradients of the barycentric coordinates."""
    p = points[triangles]  # (nt, 3, 2)
    J = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]], axis=2)  # columns are edge vectors
    area = 0.5 * np.abs(np.linalg.det(J))
    Jinv_T = np.linalg.inv(J).transpose(0, 2, 1)
    ref_grads = np.array([[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    G = np.einsum("tij,kj->tki", Jinv_T, ref_grads)  # (nt, 3, 2)
    Ke = kappa_per_triangle[:, None, None] * area[:, None, None] * np.einsum("tki,tli->tkl", G, G)
    rows = np.repeat(triangles, 3, axis=1).ravel()
    cols = np.tile(triangles, (1, 3)).ravel()
    n = len(points)
    K = sp.csr_matrix((Ke.ravel(), (rows, cols)), shape=(n, n))
    b = np.bincount(triangles.ravel(), np.repeat(f_const * area / 3, 3), minlength=n)
    return K, b


def test_fine_solve_matches_scipy():
    n = 24
    mesh = fd.UnitSquareMesh(n, n)
    V = fd.FunctionSpace(mesh, "CG", 1)
    kappa = cell_field(mesh, paper_kle((n, n)).sample_kappa(3))
    problem = Diffusion(V, kappa, 1.0)
    u = solve(problem).u

    X = fd.Function(fd.VectorFunctionSpace(mesh, "CG", 1)).interpolate(fd.SpatialCoordinate(mesh))
    points = X.dat.data_ro
    triangles = V.cell_node_map().values
    dg0 = fd.FunctionSpace(mesh, "DG", 0).cell_node_map().values[:, 0]
    K, b = scipy_p1_diffusion(points, triangles, kappa.dat.data_ro[dg0], 1.0)

    boundary = np.flatnonzero(np.any((points < 1e-12) | (points > 1 - 1e-12), axis=1))
    interior = np.setdiff1d(np.arange(len(points)), boundary)
    u_sp = np.zeros(len(points))
    u_sp[interior] = spla.spsolve(K[interior][:, interior].tocsc(), b[interior])
    rel = np.linalg.norm(u.dat.data_ro - u_sp) / np.linalg.norm(u_sp)
    assert rel < 1e-8, rel

    # the assembled Firedrake matrix itself agrees on the interior block
    A, _ = assemble_system(problem)
    indptr, indices, data = A.petscmat.getValuesCSR()
    A_sp = sp.csr_matrix((data, indices, indptr), shape=K.shape)
    diff = (A_sp - K)[interior][:, interior]
    assert abs(diff).max() < 1e-9 * abs(K).max()
