"""Solve a problem with GMsFEM for several basis providers and compare each with the fine solution.

The benchmarks that judge a basis (SLEPc, truncated spectral, learned) do it the same way: build
the multiscale space of each method on one κ (the offline stage, timed), solve each problem of
that κ in each space (the online stage), and take the relative L2 and H1-seminorm errors against
the fine solution of the same problem. :func:`build_spaces` and :func:`compare_with_fine` are
those two steps; :class:`ErrorTable` collects the errors over samples into mean/std rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Method", "build_space", "build_spaces", "compare_with_fine", "relative_errors", "ErrorTable"]


@dataclass(frozen=True)
class Method:
    """A way to make the multiscale space: a label for the tables (any hashable), a provider
    name (or object) and its constructor options, the number of local basis functions."""

    label: object
    basis: object = "slepc"
    options: dict = field(default_factory=dict)
    n_basis: int = 8


def build_space(pair, V, kappa, method: Method, boundary=None):
    """The multiscale space of ``method`` on ``kappa`` and the wall seconds it took to build it
    (the whole offline stage after the mesh pair's cached geometry: local problems or
    inference, the mapping back, R)."""
    from fem_ms.gmsfem import MultiscaleSpace

    start = time.perf_counter()
    space = MultiscaleSpace(pair, V, kappa, n_basis=method.n_basis, basis=method.basis,
                            provider_options=method.options, boundary=boundary)
    return space, time.perf_counter() - start


def build_spaces(pair, V, kappa, methods, boundary=None, failures: dict | None = None) -> dict:
    """``{label: MultiscaleSpace}`` of every method on one κ; each space's
    ``timings["offline"]`` is its offline cost.

    With a ``failures`` dict, a method whose multiscale functions are linearly dependent
    (:class:`~fem_ms.gmsfem.DegenerateSpaceError`: an undertrained learned provider can predict
    fewer independent functions than N_bf) is entered there, label → message, and left out, so
    that one model's failure is recorded instead of ending a long comparison. Without it the
    error propagates."""
    from fem_ms.gmsfem import DegenerateSpaceError

    spaces = {}
    for method in methods:
        try:
            spaces[method.label] = build_space(pair, V, kappa, method, boundary)[0]
        except DegenerateSpaceError as error:
            if failures is None:
                raise
            failures[method.label] = str(error)
    return spaces


def relative_errors(u, reference) -> tuple[float, float]:
    """(relative L2 error, relative H1-seminorm error) of ``u`` against ``reference``."""
    from fem_ms.metrics import relative_h1_error, relative_l2_error

    return relative_l2_error(u, reference), relative_h1_error(u, reference)


def compare_with_fine(problem, spaces: dict, reference=None) -> dict:
    """Solve ``problem`` in each space and compare with the fine solution.

    Parameters
    ----------
    problem : fem_ms.problems.Problem
        On the fine space of the spaces (their κ must be the problem's).
    spaces : dict label → MultiscaleSpace
        From :func:`build_spaces`.
    reference : firedrake.Function, optional
        The fine solution of ``problem``; solved here when not given.

    Returns
    -------
    dict label → dict
        ``l2``, ``h1`` (relative errors, fractions), ``offline_s`` (the space's offline stage),
        ``online_s`` (this solve).
    """
    from fem_ms import solve

    if reference is None:
        reference = solve(problem).u
    out = {}
    for label, space in spaces.items():
        if not space.matches_kappa(problem.kappa):
            raise ValueError(f"the space of {label!r} was built for another kappa than the problem's")
        result = space.reduce(problem).solve()
        l2, h1 = relative_errors(result.u, reference)
        out[label] = {"l2": l2, "h1": h1, "offline_s": space.timings["offline"],
                      "online_s": result.timings["online"]}
    return out


class ErrorTable:
    """Relative errors collected over samples, by a key of named fields (problem, forcing,
    method, …), summarised as rows of means and standard deviations in %."""

    def __init__(self, *fields: str):
        self.fields = fields
        self._errors: dict[tuple, list[tuple[float, float]]] = {}
        self._failures: dict[tuple, list[str]] = {}

    def _key(self, key) -> tuple:
        if len(key) != len(self.fields):
            raise ValueError(f"key {key!r} does not match the fields {self.fields}")
        return tuple(key)

    def add(self, key: tuple, l2: float, h1: float) -> None:
        self._errors.setdefault(self._key(key), []).append((l2, h1))

    def fail(self, key: tuple, message: str) -> None:
        """A sample on which ``key``'s method produced no solution (e.g. a degenerate space)."""
        self._failures.setdefault(self._key(key), []).append(message)
        self._errors.setdefault(self._key(key), [])

    def add_comparison(self, key: tuple, comparison: dict) -> None:
        """Every method of a :func:`compare_with_fine` result, its label appended to ``key``."""
        for label, c in comparison.items():
            self.add((*key, label), c["l2"], c["h1"])

    def rows(self) -> list[dict]:
        """One row per key in insertion order: the key's fields, ``samples`` (those with a
        solution), ``l2_mean_pct``, ``l2_std_pct``, ``h1_mean_pct``, ``h1_std_pct`` (``None``
        without any), and, where samples failed, ``failed`` (their count) and ``failure`` (the
        first message)."""
        rows = []
        for key, errors in self._errors.items():
            row = {**dict(zip(self.fields, key)), "samples": len(errors)}
            e = 100 * np.asarray(errors).reshape(-1, 2)
            for j, norm in enumerate(("l2", "h1")):
                row[f"{norm}_mean_pct"] = float(e[:, j].mean()) if len(e) else None
                row[f"{norm}_std_pct"] = float(e[:, j].std()) if len(e) else None
            if key in self._failures:
                row.update(failed=len(self._failures[key]), failure=self._failures[key][0])
            rows.append(row)
        return rows
