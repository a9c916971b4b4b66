"""The ``fem-ms`` command line: environment facts, one-off fine solves, dataset generation.

Plugins add commands through the ``fem_ms.cli_commands`` entry-point group: an entry point named
like its command refers to a function that takes the ``add_subparsers`` action, adds that
command's parser and sets its ``run`` default (a function of the parsed arguments returning the
exit status). fem_ms never imports a plugin by name.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points

COMMAND_GROUP = "fem_ms.cli_commands"

# The commands the plugin of the fem-ms source tree adds, so that asking for one without it says
# what to install instead of argparse's "invalid choice".
PLUGIN_COMMANDS = {"train-basis": "fem-ms-torch", "train-mlmc": "fem-ms-torch", "train-gpo": "fem-ms-torch"}


def _info(args) -> int:
    import firedrake
    import numpy
    from petsc4py import PETSc
    from slepc4py import SLEPc

    import fem_ms
    from fem_ms.gmsfem.providers import ENTRY_POINT_GROUP

    facts = {
        "fem_ms": fem_ms.__version__,
        "firedrake": getattr(firedrake, "__version__", "unknown"),
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "slepc": ".".join(map(str, SLEPc.Sys.getVersion())),
        "numpy": numpy.__version__,
        "mpi_size": PETSc.COMM_WORLD.getSize(),
        "petsc_packages": {p: PETSc.Sys.hasExternalPackage(p)
                           for p in ("mumps", "cholmod", "umfpack", "superlu_dist", "hypre")},
        "entry_points": {group: {ep.name: ep.value for ep in sorted(entry_points(group=group), key=lambda e: e.name)}
                         for group in (ENTRY_POINT_GROUP, COMMAND_GROUP)},
    }
    print(json.dumps(facts, indent=2))
    return 0


def _solve(args) -> int:
    import firedrake as fd

    from . import coefficients, meshes, problems, solvers
    from .export import write_fields

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
    result = solvers.solve(problem, solver=args.solver)
    print(f"{args.problem}: {V.dim()} fine DOFs, max u = {result.u.dat.data_ro.max():.6g}, "
          f"iterations = {result.iterations}, timings = {result.timings}")
    fields = {"u": result.u, "kappa": kappa}
    if args.n_basis:
        from .gmsfem import GMsFEM
        from .metrics import relative_h1_error, relative_l2_error

        g = GMsFEM(problem, pair, n_basis=args.n_basis, basis=args.basis)
        ms = g.solve().u
        fields["u_gmsfem"] = ms
        print(f"GMsFEM ({args.basis}, N_bf={args.n_basis}, {g.n_coarse} coarse DOFs): "
              f"relative L2 {100 * relative_l2_error(ms, result.u):.2f} %, "
              f"H1 {100 * relative_h1_error(ms, result.u):.2f} %, "
              f"offline {g.timings['offline']:.3f} s, online {g.timings['online']:.3f} s")
    if args.out:
        print("wrote", write_fields(args.out, pair.fine, **fields))
    return 0


def _generate(args) -> int:
    from .data import generate, load_config

    config = load_config(args.config)
    path = generate(config, args.out_dir, overwrite=args.overwrite)
    from pyop2.mpi import COMM_WORLD

    if COMM_WORLD.rank == 0:
        print(f"wrote {path} ({config.samples} samples of {config.kind!r})")
    return 0


def _add_plugin_commands(sub) -> dict[str, str]:
    """Add the parsers of the ``fem_ms.cli_commands`` entry points to ``sub``.

    Returns the commands whose plugin failed to load, with the error: a broken plugin must not
    take the core's commands down with it, and is reported when it is used.
    """
    broken = {}
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        origin = f"{ep.name} = {ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})"
        if ep.name in sub.choices:
            raise RuntimeError(f"the {COMMAND_GROUP} entry point {origin} clashes with the command {ep.name!r} "
                               "already registered")
        try:
            add_parser = ep.load()
        except Exception as exc:  # ImportError or whatever the plugin's module raises on import
            broken[ep.name] = f"{origin}: {type(exc).__name__}: {exc}"
            continue
        add_parser(sub)
        if ep.name not in sub.choices:
            raise RuntimeError(f"the {COMMAND_GROUP} entry point {origin} added no command named {ep.name!r}")
    return broken


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="fem-ms", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, PETSc packages and plugins (entry points) of this "
                                "environment").set_defaults(run=_info)
    s = sub.add_parser("solve", help="one fine solve on a KLE permeability sample")
    s.add_argument("--problem", default="diffusion", help="diffusion, richards or heat")
    s.add_argument("--dim", type=int, default=2, choices=(2, 3))
    s.add_argument("--fine", type=int, default=100, help="fine cells per side")
    s.add_argument("--coarse", type=int, default=5, help="coarse cells per side")
    s.add_argument("--simplex", action="store_true", help="triangles/tetrahedra instead of Q1")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--forcing", choices=("constant", "random"), default="constant")
    s.add_argument("--robin", action="store_true", help="Dirichlet y=0, Robin y=1")
    s.add_argument("--solver", default="mumps", help="PETSc preset: mumps, cholmod, cg-gamg, cg-hypre")
    s.add_argument("--n-basis", type=int, default=0, help="also solve by GMsFEM with this N_bf")
    s.add_argument("--basis", default="slepc", help="GMsFEM basis provider (entry-point name)")
    s.add_argument("--out", help="write u and kappa to this .vtu/.xdmf file")
    s.set_defaults(run=_solve)
    g = sub.add_parser("generate", help="generate a training dataset from a .toml/.json config "
                                        "(resumable; run under mpiexec to spread samples over ranks)")
    g.add_argument("config", help="config file (see demos/configs and docs/datasets.md)")
    g.add_argument("--out-dir", default=".", help="directory of the NAME.h5 file")
    g.add_argument("--overwrite", action="store_true",
                   help="replace a dataset or unfinished samples made with a different config")
    g.set_defaults(run=_generate)
    broken = _add_plugin_commands(sub)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in broken:
        print(f"fem-ms: the {command} command could not be loaded: {broken[command]}", file=sys.stderr)
        return 1
    for name, error in broken.items():
        print(f"fem-ms: warning: the plugin command {name} could not be loaded: {error}", file=sys.stderr)
    if command in PLUGIN_COMMANDS and command not in sub.choices:
        print(f"fem-ms: {command} comes with the {PLUGIN_COMMANDS[command]} plugin, which is not installed "
              f"(pip install ./plugins in the fem-ms source; docs/install.md)", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    del sys.argv[1:]  # PETSc reads sys.argv when Firedrake is first imported
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
