"""Global intrusive POD as a baseline: :class:`fem_ms.pod.PODSpace` of the training solutions,
Galerkin solves of each new κ and f on it through GMsFEM's coarse models (the classical core
does the work; no network)."""

from __future__ import annotations

import time

import numpy as np

from .baseline import OperatorBaseline

__all__ = ["IntrusivePOD"]


class IntrusivePOD(OperatorBaseline):
    """Global POD (the GMsFEM-NO paper's appendix F, baseline 1): the first ``n_modes`` POD modes
    of the training u, and for each test sample the Galerkin projection of its fine FE system
    (diffusion: one linear solve; Richards: Picard iterations on the projected system).

    Parameters
    ----------
    problem : {"diffusion", "richards"}
        The PDE of the dataset (:func:`fem_ms.problems.make_problem`).
    n_modes : int, optional
        Modes kept (default: all the training snapshots span).

    Attributes
    ----------
    space : fem_ms.pod.PODSpace
        After ``fit``.
    solve_seconds : float
        CPU seconds per sample of the reduced solves of the last ``predict`` (fine assembly of
        A(κ) and the projection included, building the Firedrake fields from the arrays and
        sampling the result on the grid excluded): the online solve time.

    ``n_parameters`` counts the stored modes' entries (n_modes × fine DOFs).
    """

    name = "POD (intrusive)"
    iterative = False

    def __init__(self, problem: str = "diffusion", n_modes: int | None = None):
        super().__init__()
        from fem_ms.checks import check_int

        if problem not in ("diffusion", "richards"):
            raise ValueError(f"IntrusivePOD: problem must be 'diffusion' or 'richards', got {problem!r}")
        self.problem = problem
        self.n_modes = None if n_modes is None else check_int("n_modes", n_modes)
        self.space = None
        self.solve_seconds = float("nan")

    def _fit(self, data, *, epochs, max_cpu_seconds, seed, progress) -> None:
        import firedrake as fd
        from pyop2.mpi import COMM_SELF

        from fem_ms.coefficients import vertex_grid_indices
        from fem_ms.pod import PODSpace

        n = data["kappa"].shape[1]
        # the multilevel datasets' mesh (fem_ms.data.generate: a Q1 unit square on one process)
        V = fd.FunctionSpace(fd.UnitSquareMesh(n, n, quadrilateral=True, comm=COMM_SELF), "CG", 1)
        self.space = PODSpace.from_grids(V, data["u"], n_modes=self.n_modes)
        self._indices = vertex_grid_indices(V, (n, n))
        self.n_parameters = int(self.space.n_modes * V.dim())

    def _predict(self, kappa, f) -> np.ndarray:
        from fem_ms.coefficients import cell_field, vertex_field
        from fem_ms.problems import make_problem

        V = self.space.V
        out = np.zeros_like(f)
        solving = 0.0
        for s in range(len(kappa)):
            problem = make_problem(self.problem, V, cell_field(V.mesh(), kappa[s]), vertex_field(V, f[s]))
            start = time.process_time()
            u = self.space.reduce(problem).solve().u
            solving += time.process_time() - start
            out[s][self._indices] = u.dat.data_ro_with_halos
        self.solve_seconds = solving / len(kappa)
        return out
