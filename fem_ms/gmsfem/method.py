"""``GMsFEM``: the short facade over a multiscale space and the coarse model of one problem.

``GMsFEM(problem, pair, n_basis=8, basis="slepc").solve()`` builds the
:class:`~.space.MultiscaleSpace` of the problem's κ (the offline stage) and solves the problem's
coarse model (:func:`~.coarse.coarse_model`) on it. To solve several problems on one κ (other
right-hand sides, Robin data, nonlinearities, time stepping) build the space once and call
``space.reduce(problem).solve()`` for each.
"""

from __future__ import annotations

from ..checks import check_int
from ..meshes import NestedMeshes
from ..problems import Problem
from ..solvers import SolveResult
from .providers import provider_from
from .space import MultiscaleSpace

__all__ = ["GMsFEM"]


class GMsFEM:
    """The Generalized Multiscale FEM for one fine-scale problem on a nested mesh pair.

    Parameters
    ----------
    problem : fem_ms.problems.Problem
        Diffusion, Richards or Heat on ``pair.fine`` (homogeneous Dirichlet or Robin boundary).
    pair : NestedMeshes
        The coarse/fine meshes; ``problem.V`` must live on ``pair.fine``.
    n_basis : int
        Local basis functions per neighbourhood (N_bf).
    basis : str or BasisProvider
        Provider name from the ``fem_ms.basis_providers`` entry points (``"slepc"`` built in)
        or a provider object.
    provider_options : dict, optional
        Keyword arguments for the provider's constructor when ``basis`` is a name.

    Attributes
    ----------
    space : MultiscaleSpace
        The multiscale space, after :meth:`offline` (or the first :meth:`solve`).
    model : CoarseModel
        The problem on that space.
    """

    def __init__(self, problem: Problem, pair: NestedMeshes, n_basis: int = 8, basis="slepc",
                 provider_options: dict | None = None):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a fem_ms.problems.Problem, got {type(problem).__name__}")
        if not isinstance(pair, NestedMeshes):
            raise TypeError(f"pair must be NestedMeshes (see fem_ms.meshes), got {type(pair).__name__}")
        if problem.V.mesh() is not pair.fine:
            raise ValueError("the problem's function space is not on the fine mesh of this pair")
        n_basis = check_int("n_basis", n_basis)
        self.problem, self.pair, self.n_basis = problem, pair, int(n_basis)
        self.provider = provider_from(basis, provider_options)
        self.space: MultiscaleSpace | None = None
        self.model = None
        self._online: dict[str, float] = {}

    def offline(self) -> GMsFEM:
        """Build the multiscale space and the coarse model (once; later calls return at once)."""
        if self.space is None:
            self.space = MultiscaleSpace.for_problem(self.problem, self.pair, self.n_basis, self.provider)
            self.model = self.space.reduce(self.problem)
        return self

    def solve(self, **options) -> SolveResult:
        """The multiscale solution on the fine mesh (``result.u``; ``result.coarse`` holds u_0).

        ``options`` go to the coarse model's ``solve``: ``rtol`` and ``max_iterations`` for
        Picard iterations (Richards), ``progress`` for time stepping (heat), ``load`` for
        another right-hand side of a linear problem.
        """
        self.offline()
        result = self.model.solve(**options)
        self._online = {"online": result.timings["online"]}
        return result

    @property
    def timings(self) -> dict:
        """Wall seconds of the offline phases (:attr:`MultiscaleSpace.timings`) and of the last
        online solve (``online``)."""
        return {**(self.space.timings if self.space is not None else {}), **self._online}

    @property
    def n_coarse(self) -> int:
        """Dimension of the multiscale space (N_v · n_basis)."""
        return self.offline().space.dimension
