"""PETSc/SLEPc options that belong to the solver they were given to.

PETSc reads options from one global database. Writing a solver's options there for good makes
the first solver in a process decide the options of every later one under the same prefix.
:class:`SolverOptions` follows Firedrake (``petsctools.OptionsManager``): the options are in
the database only while the object they configure is set up or run, and removed afterwards;
options given on the command line under the prefix win over both the defaults and the code's.

It adds one thing petsctools leaves to ``-options_left``: options the caller passed that PETSc
never read (a misspelt ``eps_tpye``) raise :class:`UnusedOptionsError` naming them, instead of
being ignored.
"""

from __future__ import annotations

import contextlib
import difflib

__all__ = ["SolverOptions", "UnusedOptionsError", "check_used", "petsc_error_summary"]

# read by Firedrake itself from the parameters dict, not by PETSc
_FIREDRAKE_KEYS = frozenset({"mat_type", "pmat_type", "sub_mat_type", "sub_pmat_type"})


class UnusedOptionsError(ValueError):
    """Options passed to a PETSc/SLEPc object that it never read."""


class SolverOptions:
    """The options of one kind of PETSc object, inserted while it is configured.

    Parameters
    ----------
    defaults : dict
        The package's own settings (never reported as unused: which of them apply depends on
        the others, e.g. factorization options under an iterative method).
    options : dict, optional
        The caller's settings, overriding ``defaults``. Each must be read by PETSc during
        the first :meth:`configure` block, or :meth:`check_used` raises.
    prefix : str
        Options prefix; command-line options ``-{prefix}KEY`` override both dicts.
    what : str
        Names the object in error messages (e.g. "the SLEPc eigensolver").
    """

    def __init__(self, defaults: dict, options: dict | None, prefix: str, what: str):
        import petsctools

        if options is not None and not isinstance(options, dict):
            raise TypeError(f"options for {what} must be a dict of PETSc options, got {type(options).__name__}")
        for key in options or {}:
            if not isinstance(key, str) or not key or key.startswith("-"):
                raise ValueError(f"options for {what}: keys are PETSc option names without prefix or "
                                 f"leading '-', got {key!r}")
        self.what = what
        self.user_keys = set(options or {})
        merged = {k: ("" if v is None else v) for k, v in {**defaults, **(options or {})}.items()}
        self.manager = petsctools.OptionsManager(merged, options_prefix=prefix)
        self.prefix = self.manager.options_prefix
        self._checked = False

    @property
    def parameters(self) -> dict:
        """The options in effect (defaults, then the caller's, then the command line's)."""
        return dict(self.manager.parameters)

    @contextlib.contextmanager
    def configure(self, obj):
        """Insert the options, set ``obj``'s prefix and call ``setFromOptions``; the block
        should also contain the calls that read options lazily (``setUp``, ``solve``)."""
        from petsc4py import PETSc

        with self.manager.inserted_options():
            obj.setOptionsPrefix(self.prefix)
            obj.setFromOptions()
            yield
            if not self._checked:
                self._checked = True
                database = PETSc.Options()
                unused = sorted(k for k in self.user_keys if not database.used(self.prefix + k))
                if unused:
                    raise UnusedOptionsError(self._unused_message(unused))

    def _unused_message(self, unused: list[str]) -> str:
        return _unused_message(self.what, self.prefix, unused, self.manager.parameters)


def _unused_message(what: str, prefix: str, unused, parameters) -> str:
    known = set(parameters) - set(unused)
    hints = []
    for key in unused:
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{prefix}{key}" + (f" (did you mean {prefix}{close[0]}?)" if close else ""))
    return (f"{what} did not use the option(s) {', '.join(hints)}: misspelt, or not applicable to the method "
            f"chosen; options in effect: {sorted(parameters)}")


def check_used(solver, keys, what: str) -> None:
    """Raise :class:`UnusedOptionsError` if a Firedrake solver (a ``petsctools.OptionsManager``)
    has not read one of ``keys`` — the options its caller passed — after a solve."""
    unused = sorted(k for k in set(keys) - _FIREDRAKE_KEYS if k not in solver._used_options)
    if unused:
        raise UnusedOptionsError(_unused_message(what, solver.options_prefix, unused, solver.parameters))


def petsc_error_summary(exc: BaseException) -> str:
    """One line from a PETSc error (or the SystemError petsc4py raises around one): PETSc's own
    message — the last line of its traceback — and the error code."""
    cause = exc
    while cause is not None and not hasattr(cause, "ierr") and cause is not (cause.__cause__ or cause.__context__):
        cause = cause.__cause__ or cause.__context__
    cause = cause if cause is not None else exc
    lines = [line.split("] ", 1)[-1].strip() for line in str(cause).splitlines() if line.strip()]
    message = next((line for line in reversed(lines) if " at " not in line or "()" not in line), type(cause).__name__)
    code = getattr(cause, "ierr", None)
    return message + (f" (PETSc error code {code})" if code is not None else "")
