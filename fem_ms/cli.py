"""The ``fem-ms`` command line: environment facts and one-off fine solves."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _info(args) -> int:
    import firedrake
    import numpy
    from petsc4py import PETSc
    from slepc4py import SLEPc

    import fem_ms

    facts = {
        "fem_ms": fem_ms.__version__,
        "firedrake": getattr(firedrake, "__version__", "unknown"),
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "slepc": ".".join(map(str, SLEPc.Sys.getVersion())),
        "numpy": numpy.__version__,
        "mpi_size": PETSc.COMM_WORLD.getSize(),
        "petsc_packages": {p: PETSc.Sys.hasExternalPackage(p)
                           for p in ("mumps", "cholmod", "umfpack", "superlu_dist", "hypre")},
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


def _plugin_function(command: str, module: str, name: str):
    """``module.name`` from the fem_ms_torch plugin, imported only when a torch command runs:
    fem_ms itself never imports torch."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise SystemExit(f"fem-ms {command} needs the fem_ms_torch plugin and torch: {exc}") from None


def _config_path(path):
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"config file not found: {path}")
    return path


def _keyword_config(path, function, required=("dataset", "out")) -> dict:
    """The TOML file at ``path`` as keyword arguments of ``function``: required keys present,
    unknown keys named (a misspelt option must not be silently ignored)."""
    import inspect
    import tomllib

    path = _config_path(path)
    settings = tomllib.loads(path.read_text())
    for key in required:
        if key not in settings:
            raise SystemExit(f"config {path}: missing key {key!r}")
    known = set(inspect.signature(function).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SystemExit(f"config {path}: unknown keys {unknown}; known: {sorted(known)}")
    return settings


def _train_basis(args) -> int:
    train_basis = _plugin_function("train-basis", "fem_ms_torch.basis.train", "train_basis")
    out = train_basis(**_keyword_config(args.config, train_basis))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line rather than one per rank
        print(f"wrote {out}")
    return 0


def _train_mlmc(args) -> int:
    train_from_config = _plugin_function("train-mlmc", "fem_ms_torch.mlmc.run", "train_from_config")
    summary = train_from_config(_config_path(args.config))
    print(f"trained on levels {summary['levels']} (samples {summary['counts']}, batches {summary['batch_sizes']}) "
          f"in {summary['train_time_s']:.1f} s; test {summary['loss']} on the finest level: "
          f"{summary['test_loss_finest']:.4g}")
    return 0


def _train_gpo(args) -> int:
    train_gpo = _plugin_function("train-gpo", "fem_ms_torch.gpo", "train_gpo")
    settings = _keyword_config(args.config, train_gpo)
    out = train_gpo(**settings)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fem-ms", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions and PETSc packages of this environment").set_defaults(run=_info)
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
    t = sub.add_parser("train-basis", help="train GMsFEM-NO models (one per neighbourhood kind) on a "
                                           "gmsfem_basis dataset; resumable")
    t.add_argument("config", help="TOML with dataset, out and the keyword arguments of "
                                  "fem_ms_torch.basis.train.train_basis (epochs, loss, width, ...)")
    t.set_defaults(run=_train_basis)
    m = sub.add_parser("train-mlmc", help="multilevel Monte Carlo training of a neural operator or graph "
                                          "network over a multilevel/cylinder_flow dataset; resumable")
    m.add_argument("config", help="TOML with [data], [model], [mlmc], [train] (see fem_ms_torch.mlmc.run)")
    m.set_defaults(run=_train_mlmc)
    t = sub.add_parser("train-gpo", help="train a Gaussian-process operator (LoGoS-GPO, GPO or SVGP) on a "
                                         "burgers, darcy_notch or multilevel dataset; resumable")
    t.add_argument("config", help="TOML with dataset, out, model and the keyword arguments of "
                                  "fem_ms_torch.gpo.train_gpo (epochs, lr, [options], ...); see docs/gpo.md")
    t.set_defaults(run=_train_gpo)
    args = parser.parse_args(argv)
    del sys.argv[1:]  # PETSc reads sys.argv when Firedrake is first imported
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
