"""The ``fem-ms`` command line: environment facts, one-off fine and GMsFEM solves, dataset generation.

Plugins add commands through the ``fem_ms.cli_commands`` entry-point group (:mod:`fem_ms.plugins`);
fem_ms never imports a plugin by name.

Like a PETSc application, ``fem-ms`` passes single-dash options it does not know to PETSc:
``fem-ms solve --n-basis 8 -ksp_monitor -log_view -gmsfem_eps_tol 1e-12``. The fine solve reads
options without prefix, the SLEPc eigensolves under ``-gmsfem_``, the coarse solves under
``-gmsfem_coarse_``. Options PETSc never read are named in a warning at the end.

Errors are one line on stderr naming the problem; the exit status is 2 for usage errors (bad
arguments, files, configs, values), 1 for failures (a solver that does not converge), 130 after
Ctrl-C. ``--traceback`` shows the full Python traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import tomllib

from .plugins import BASIS_PROVIDERS, CLI_COMMANDS, registered

__all__ = ["main", "split_petsc_options", "pass_to_petsc", "parse_args_and_petsc_options", "EXIT_FAILURE",
           "EXIT_USAGE", "EXIT_INTERRUPTED"]

COMMAND_GROUP = CLI_COMMANDS
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

# The commands the plugin of the fem-ms source tree adds, so that asking for one without it says
# what to install instead of argparse's "invalid choice".
PLUGIN_COMMANDS = {"train-basis": "fem-ms-torch", "train-mlmc": "fem-ms-torch", "train-gpo": "fem-ms-torch"}
# fem_ms.problems.PROBLEMS and fem_ms.solvers.SOLVER_PRESETS (importing them would start PETSc
# before the command line is parsed; tests/test_cli.py checks they agree)
PROBLEM_NAMES = ("diffusion", "richards", "heat")
SOLVER_NAMES = ("cg-gamg", "cg-hypre", "cholmod", "mumps")
# bad input rather than a failed computation
USAGE_ERRORS = (ValueError, TypeError, LookupError, FileNotFoundError, FileExistsError, IsADirectoryError,
                NotADirectoryError, PermissionError, tomllib.TOMLDecodeError)

_PETSC_OPTION = re.compile(r"-[A-Za-z_][A-Za-z0-9_]+")  # -ksp_monitor; not -v, not --fine
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

logger = logging.getLogger("fem_ms.cli")


class UsageError(Exception):
    """A command line that cannot be run as given."""


def split_petsc_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """(fem-ms's arguments, PETSc's options): ``-name [value]`` tokens with a single dash and a
    name of two or more characters are PETSc's; the next token is their value unless it is
    another option (a negative number is a value). Everything after ``--`` is fem-ms's."""
    ours, petsc = [], []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            ours.extend(argv[i:])
            break
        if _PETSC_OPTION.fullmatch(token):
            petsc.append(token)
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is not None and (not following.startswith("-") or _NUMBER.fullmatch(following)):
                petsc.append(following)
                i += 1
        else:
            ours.append(token)
        i += 1
    return ours, petsc


def pass_to_petsc(options: list[str]) -> None:
    """Make ``options`` PETSc's command-line options: in ``sys.argv`` (replacing the script's
    arguments) for Firedrake to initialise PETSc with, or straight into the options database if
    PETSc is running already."""
    sys.argv[1:] = options
    if options and "petsc4py.PETSc" in sys.modules:
        from petsc4py import PETSc

        PETSc.Options().insertString(" ".join(options))


def _own_option_misspelt(parser: argparse.ArgumentParser, petsc: list[str]) -> str | None:
    """The first of ``petsc`` that is a single-dash spelling of one of ``parser``'s long options
    (``-fine`` for ``--fine``), with the message saying so."""
    own = _long_options(parser)
    for option in petsc:
        if "-" + option in own:
            return f"{option} is {parser.prog}'s own option: write -{option}"
    return None


def parse_args_and_petsc_options(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse a script's own arguments with ``parser`` and hand the PETSc options among them to
    PETSc, as ``fem-ms`` does: ``python demos/gmsfem_basics.py --fine 40 -ksp_monitor``.

    ``argv`` (default ``sys.argv[1:]``) is split by :func:`split_petsc_options`; ``parser``
    parses its part (so a misspelt ``--option`` is still an error), and the rest goes to PETSc
    (:func:`pass_to_petsc`). Call it before Firedrake is imported: PETSc reads ``sys.argv``
    then. PETSc itself reports options it never used (``-options_left``).
    """
    ours, petsc = split_petsc_options(sys.argv[1:] if argv is None else list(argv))
    misspelt = _own_option_misspelt(parser, petsc)
    if misspelt:
        parser.error(misspelt)
    args = parser.parse_args(ours)
    pass_to_petsc(petsc)
    return args


def _rank() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.rank


def _print(*args) -> None:
    """Print on rank 0 only: every rank computes the same global figures."""
    if _rank() == 0:
        print(*args, flush=True)


def _info(args) -> int:
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    import firedrake
    from petsc4py import PETSc
    from slepc4py import SLEPc

    import fem_ms
    from fem_ms.data.config import CONFIG_KINDS

    try:
        torch = {"installed": True, "version": version("torch")}
    except PackageNotFoundError:
        torch = {"installed": False}
    else:
        try:  # optional: torch is the plugin's dependency, not the core's
            import torch as _torch
        except (ImportError, OSError) as exc:  # a broken install is a fact to report, not a reason to fail
            torch["import_error"] = f"{type(exc).__name__}: {exc}"
        else:
            torch["cuda_available"] = bool(_torch.cuda.is_available())
    try:
        plugin = version("fem-ms-torch")
    except PackageNotFoundError:
        plugin = None
    facts = {
        "fem_ms": fem_ms.__version__,
        "fem_ms_torch": plugin,
        "torch": torch,
        "firedrake": getattr(firedrake, "__version__", "unknown"),
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "slepc": ".".join(map(str, SLEPc.Sys.getVersion())),
        "numpy": numpy.__version__,
        "mpi_size": PETSc.COMM_WORLD.getSize(),
        "petsc_packages": {p: PETSc.Sys.hasExternalPackage(p)
                           for p in ("mumps", "cholmod", "umfpack", "superlu_dist", "hypre")},
        "basis_providers": [ep.name for ep in registered(BASIS_PROVIDERS)],
        "dataset_kinds": sorted(CONFIG_KINDS),
        "entry_points": {group: {ep.name: ep.value for ep in registered(group)}
                         for group in (BASIS_PROVIDERS, CLI_COMMANDS)},
        "environment": {"prefix": sys.prefix, "PETSC_DIR": os.environ.get("PETSC_DIR"),
                        "PETSC_ARCH": os.environ.get("PETSC_ARCH"), "SLEPC_DIR": os.environ.get("SLEPC_DIR")},
    }
    _print(json.dumps(facts, indent=2))
    return 0


def _assignments(items: list[str], flag: str) -> dict:
    """``KEY=VALUE`` arguments of ``flag`` as a dict, the values read as TOML literals (numbers,
    booleans, quoted strings, lists; anything else is a string)."""
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        values[key.strip()] = value
    return values


def _provider_options(args) -> dict:
    """``--checkpoint`` and ``--provider-option KEY=VALUE`` as the provider's keyword arguments."""
    options = _assignments(args.provider_option, "--provider-option")
    if args.checkpoint is not None:
        options["checkpoint"] = args.checkpoint
    options.setdefault("progress", args.verbosity >= 0)  # every provider accepts it (ProviderOptions)
    return options


def _solve(args) -> int:
    from mpi4py import MPI

    import firedrake as fd

    from . import coefficients, meshes, problems, solvers
    from .export import TimeSeriesWriter, write_fields

    if args.n_basis < 0:
        raise UsageError(f"--n-basis must be non-negative, got {args.n_basis}")
    if (args.provider_option or args.checkpoint is not None) and not args.n_basis:
        raise UsageError("--checkpoint/--provider-option configure the GMsFEM basis: give --n-basis too")
    provider_options = _provider_options(args)
    cells = (args.fine,) * args.dim
    pair = meshes.structured_hierarchy(args.coarse, args.fine, dim=args.dim, quadrilateral=not args.simplex)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = coefficients.cell_field(pair.fine, coefficients.paper_kle(cells).sample_kappa(args.seed))
    if args.forcing == "random":
        f = coefficients.vertex_field(V, coefficients.paper_forcing(cells).sample(args.seed + 1))
    else:
        f = 1.0
    boundary = problems.RobinBoundary() if args.robin else None
    problem = problems.make_problem(args.problem, V, kappa, f, boundary)
    options = {"progress": args.verbosity >= 0} if args.problem == "heat" else {}
    # heat to .xdmf: the time series of every step (the last one, with u_gmsfem, written at the end)
    heat_series = args.out is not None and args.problem == "heat" and args.out.endswith(".xdmf")
    series = TimeSeriesWriter(args.out, pair.fine) if heat_series else contextlib.nullcontext()
    with series:
        if heat_series:
            options["callback"] = lambda step, t, u: series.write(t, u=u, kappa=kappa) \
                if step < problem.n_steps else None
        result = solvers.solve(problem, solver=args.solver, options_prefix="", **options)
        with result.u.dat.vec_ro as u:
            u_max = u.max()[1]
        _print(f"{args.problem}: {V.dim()} fine DOFs on {pair.fine.comm.size} rank(s), max u = {u_max:.6g}, "
               f"iterations = {result.iterations}, " + ", ".join(
                   f"{k} {MPI.COMM_WORLD.allreduce(v, op=MPI.MAX):.3f} s" for k, v in result.timings.items()))
        fields = {"u": result.u, "kappa": kappa}
        if args.n_basis:
            from .gmsfem import GMsFEM
            from .metrics import relative_h1_error, relative_l2_error

            g = GMsFEM(problem, pair, n_basis=args.n_basis, basis=args.basis, provider_options=provider_options)
            ms = g.solve(**({"progress": args.verbosity >= 0} if args.problem == "heat" else {})).u
            fields["u_gmsfem"] = ms
            timings = {k: MPI.COMM_WORLD.allreduce(g.timings[k], op=MPI.MAX) for k in ("offline", "online")}
            _print(f"GMsFEM ({args.basis}, N_bf={args.n_basis}, {g.n_coarse} coarse DOFs): "
                   f"relative L2 {100 * relative_l2_error(ms, result.u):.2f} %, "
                   f"H1 {100 * relative_h1_error(ms, result.u):.2f} %, "
                   f"offline {timings['offline']:.3f} s, online {timings['online']:.3f} s")
        if heat_series:
            series.write(problem.n_steps * problem.dt, **fields)
            written = series.path
        elif args.out:
            written = write_fields(args.out, pair.fine, **fields)
    if args.out:
        ranks = pair.fine.comm.size
        _print(f"wrote {written}" + (f" (gathered from {ranks} ranks)" if ranks > 1 else ""))
    return 0


def _generate(args) -> int:
    from .data import generate, load_config

    overrides = _assignments(args.overrides, "--set")
    if args.samples is not None:
        overrides["samples"] = args.samples
    config = load_config(args.config, overrides)
    if args.print_config:
        _print(config.to_toml().rstrip("\n"))
        return 0
    path = generate(config, args.out_dir, overwrite=args.overwrite, progress=args.verbosity >= 0)
    _print(f"wrote {path} ({config.samples} samples of {config.kind!r})")
    return 0


def _add_plugin_commands(sub) -> dict[str, str]:
    """Add the parsers of the ``fem_ms.cli_commands`` entry points to ``sub``.

    Returns the commands whose plugin failed to load, with the error: a broken plugin must not
    take the core's commands down with it, and is reported when it is used.
    """
    broken = {}
    for ep in registered(CLI_COMMANDS):
        origin = f"{ep.name} = {ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})"
        if ep.name in sub.choices:
            raise RuntimeError(f"the {CLI_COMMANDS} entry point {origin} clashes with the command {ep.name!r} "
                               "already registered")
        try:
            add_parser = ep.load()
        except Exception as exc:  # ImportError or whatever the plugin's module raises on import
            broken[ep.name] = f"{origin}: {type(exc).__name__}: {exc}"
            continue
        add_parser(sub)
        if ep.name not in sub.choices:
            raise RuntimeError(f"the {CLI_COMMANDS} entry point {origin} added no command named {ep.name!r}")
    return broken


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting, so that every usage error
    takes the same one-line path."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """The parser of ``fem-ms`` with every command, and the plugin commands that failed to load
    (with their errors)."""
    from . import __version__

    parser = _Parser(prog="fem-ms", description=__doc__.split("\n\n")[0],
                     epilog="Single-dash options such as -ksp_monitor or -gmsfem_eps_tol 1e-12 go to PETSc; put "
                            "them after the command's own arguments.")
    parser.add_argument("--version", action="version", version=f"fem-ms {__version__}")
    parser.add_argument("-v", "--verbose", dest="verbose", action="count", default=0,
                        help="log more (INFO; twice: DEBUG)")
    parser.add_argument("-q", "--quiet", dest="quiet", action="store_true",
                        help="errors only: no progress bars, no log messages below ERROR")
    parser.add_argument("--traceback", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("info", help="versions, PETSc packages, plugins, providers and dataset kinds of this "
                                "environment").set_defaults(run=_info)
    providers = [ep.name for ep in registered(BASIS_PROVIDERS)]
    s = sub.add_parser("solve", help="one fine solve on a KLE permeability sample (and a GMsFEM solve with --n-basis)")
    s.add_argument("--problem", default="diffusion", choices=PROBLEM_NAMES)
    s.add_argument("--dim", type=int, default=2, choices=(2, 3))
    s.add_argument("--fine", type=int, default=100, help="fine cells per side")
    s.add_argument("--coarse", type=int, default=5, help="coarse cells per side")
    s.add_argument("--simplex", action="store_true", help="triangles/tetrahedra instead of Q1")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--forcing", choices=("constant", "random"), default="constant")
    s.add_argument("--robin", action="store_true", help="Dirichlet y=0, Robin y=1")
    s.add_argument("--solver", default="mumps", choices=SOLVER_NAMES,
                   help="PETSc preset of the fine solve (override any option with -ksp_type ... etc.)")
    s.add_argument("--n-basis", type=int, default=0, help="also solve by GMsFEM with this N_bf")
    s.add_argument("--basis", default="slepc", choices=providers, help="GMsFEM basis provider")
    s.add_argument("--checkpoint", help="the learned provider's checkpoint (fem-ms train-basis)")
    s.add_argument("--provider-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument of the basis provider (repeatable), e.g. precision=\"bfloat16\"")
    s.add_argument("--out", help="write u and kappa (and u_gmsfem) to this .vtu/.xdmf file (heat to .xdmf: the "
                                 "time series of every step)")
    s.set_defaults(run=_solve)
    g = sub.add_parser("generate", help="generate a training dataset from a .toml/.json config "
                                        "(resumable; run under mpiexec to spread samples over ranks)")
    g.add_argument("config", help="config file (see demos/configs and docs/datasets.md)")
    g.add_argument("--out-dir", default=".", help="directory of the NAME.h5 file")
    g.add_argument("--overwrite", action="store_true",
                   help="replace a dataset or unfinished samples made with a different config")
    g.add_argument("--samples", type=int, metavar="N", help="generate N samples (the config's samples = N)")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="replace a value of the config (repeatable; VALUE as in TOML, e.g. levels=[4,8], or a "
                        "bare string); checked like the file's own")
    g.add_argument("--print-config", action="store_true",
                   help="print the config, with --samples/--set applied and defaults filled in, as TOML and exit")
    g.set_defaults(run=_generate)
    broken = _add_plugin_commands(sub)
    return parser, broken


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands' parsers (argparse keeps them in a private action; no public accessor)."""
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    names = {s for action in parser._actions for s in action.option_strings if s.startswith("--")}
    for child in _commands(parser).values():
        names |= _long_options(child)
    return names


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="fem-ms: %(levelname)s: %(name)s: %(message)s")
    if verbosity < 0:
        os.environ["TQDM_DISABLE"] = "1"  # tqdm reads its defaults from TQDM_* variables


def _warn_unused_petsc_options(options: list[str]) -> None:
    if not options or "petsc4py.PETSc" not in sys.modules:
        return
    from petsc4py import PETSc

    database = PETSc.Options()
    unused = [o for o in options if _PETSC_OPTION.fullmatch(o) and not database.used(o[1:])]
    if unused:
        logger.warning("PETSc did not use the option(s) %s: misspelt, or for a solver this command does not run",
                       " ".join(unused))


def main(argv=None) -> int:
    """Run ``fem-ms`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    traceback = "--traceback" in argv
    interrupted = _record_interrupts()
    try:
        ours, petsc = split_petsc_options(argv)
        parser, broken = build_parser()
        command = next((arg for arg in ours if not arg.startswith("-")), None)
        if command in broken:
            print(f"fem-ms: the {command} command could not be loaded: {broken[command]}", file=sys.stderr)
            return EXIT_FAILURE
        for name, error in broken.items():
            print(f"fem-ms: warning: the plugin command {name} could not be loaded: {error}", file=sys.stderr)
        if command in PLUGIN_COMMANDS and command not in _commands(parser):
            raise UsageError(f"{command} comes with the {PLUGIN_COMMANDS[command]} plugin, which is not installed "
                             "(pip install ./plugins in the fem-ms source; docs/install.md)")
        misspelt = _own_option_misspelt(parser, petsc)
        if misspelt:
            raise UsageError(misspelt)
        args = parser.parse_args(ours)
        args.verbosity = -1 if args.quiet else args.verbose
        _configure_logging(args.verbosity)
        # fem-ms names the options PETSc did not use itself, in one line
        pass_to_petsc([*petsc, "-options_left", "0"] if petsc else [])
        status = args.run(args)
        _warn_unused_petsc_options(petsc)
        return status
    except KeyboardInterrupt:
        if traceback:
            raise
        return _report_interrupt()
    except SystemExit as exc:  # --help, --version, and plugins that exit with a message
        if isinstance(exc.code, str):
            print(f"fem-ms: {exc.code}", file=sys.stderr)
            return EXIT_USAGE
        return exc.code or 0
    except Exception as exc:
        if traceback:
            raise
        # Ctrl-C inside a Python callback of PETSc's comes back as a PETSc error (petsc4py's 101)
        return _report_interrupt() if interrupted.is_set() else _report(exc)
    finally:
        if signal.getsignal(signal.SIGINT) is interrupted.handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _record_interrupts() -> threading.Event:
    """An event set by SIGINT, which is otherwise handled as Python's default (KeyboardInterrupt);
    its ``handler`` is installed while :func:`main` runs, where Python's default was installed."""
    event = threading.Event()

    def handler(signum, frame):
        event.set()
        signal.default_int_handler(signum, frame)

    event.handler = handler
    # signal handlers can only be set from the main thread
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, handler)
    return event


def _report_interrupt() -> int:
    print("fem-ms: interrupted (datasets and training runs resume when the same command is run again)",
          file=sys.stderr)
    return EXIT_INTERRUPTED


def _report(exc: Exception) -> int:
    """Print ``exc`` as one line on stderr (with the rank when there are several); the exit status."""
    from .petsc_options import petsc_error_summary

    status = EXIT_USAGE if isinstance(exc, (UsageError, *USAGE_ERRORS)) else EXIT_FAILURE
    if isinstance(exc, UsageError):
        message = str(exc)
    elif hasattr(exc, "ierr"):  # a PETSc error: its traceback of C functions in one line
        message = f"PETSc: {petsc_error_summary(exc)}"
    else:
        lines = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    where = ""
    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI

        where = f" (rank {MPI.COMM_WORLD.rank})" if MPI.COMM_WORLD.size > 1 else ""
    hint = "" if status == EXIT_USAGE else " (--traceback shows where)"
    print(f"fem-ms{where}: error: {message}{hint}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
