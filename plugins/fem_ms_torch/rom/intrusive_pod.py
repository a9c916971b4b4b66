"""Global intrusive POD as a baseline: :class:`fem_ms.pod.PODSpace` of the training solutions,
Galerkin solves of each new κ and f on it through GMsFEM's coarse models (the classical core
does the work; no network)."""

from __future__ import annotations

import functools
import time

import numpy as np

from .baseline import OperatorBaseline

__all__ = ["IntrusivePOD", "grid_space", "galerkin_solve", "galerkin_on_fields"]


@functools.lru_cache(maxsize=4)
def grid_space(n: int):
    """The fine space of a ``multilevel`` dataset level with ``n`` cells per side (Q1 on the unit
    square, one process: :mod:`fem_ms.data.generate`) and its vertex-grid indices (made once per
    size, so that a prediction's time is the solves')."""
    from fem_ms.coefficients import vertex_grid_indices
    from fem_ms.data.generate import multilevel_space

    V = multilevel_space(n)
    return V, vertex_grid_indices(V, (n, n))


def galerkin_solve(space, problem_name: str, kappa: np.ndarray, f: np.ndarray, indices) -> tuple[np.ndarray, float]:
    """The Galerkin solution of one sample's fine system on the reduced ``space``, on the vertex
    grid, and the CPU seconds of the reduced solve (fine assembly and projection included)."""
    from fem_ms.coefficients import cell_field, vertex_field
    from fem_ms.problems import make_problem

    V = space.V
    problem = make_problem(problem_name, V, cell_field(V.mesh(), kappa), vertex_field(V, f))
    start = time.process_time()
    u = space.reduce(problem).solve().u
    seconds = time.process_time() - start
    grid = np.zeros_like(f)
    grid[indices] = u.dat.data_ro_with_halos
    return grid, seconds


def galerkin_on_fields(fields: np.ndarray, problem_name: str, kappa: np.ndarray, f: np.ndarray
                       ) -> tuple[np.ndarray, float]:
    """Galerkin solutions (S, n+1, n+1) of each sample's fine system on the span of its own
    basis fields (S, m, n+1, n+1) (a network's prediction; dependent fields are dropped by
    :class:`~fem_ms.pod.PODSpace`'s rank tolerance), and the CPU seconds per sample of the
    reduced solves."""
    from fem_ms.pod import PODSpace

    V, indices = grid_space(kappa.shape[1])
    out, solving = [], 0.0
    for k, g, basis in zip(kappa, f, fields):
        u, seconds = galerkin_solve(PODSpace.from_grids(V, basis), problem_name, k, g, indices)
        out.append(u)
        solving += seconds
    return np.stack(out), solving / len(kappa)


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

    def _fit(self, data, *, epochs, max_cpu_seconds, seed, progress, validation, validate_every) -> None:
        from fem_ms.pod import PODSpace

        V, self._indices = grid_space(data["kappa"].shape[1])
        self.space = PODSpace.from_grids(V, data["u"], n_modes=self.n_modes)
        self.n_parameters = int(self.space.n_modes * V.dim())

    def _predict(self, kappa, f) -> np.ndarray:
        solved = [galerkin_solve(self.space, self.problem, k, g, self._indices) for k, g in zip(kappa, f)]
        self.solve_seconds = sum(seconds for _, seconds in solved) / len(kappa)
        return np.stack([u for u, _ in solved])
