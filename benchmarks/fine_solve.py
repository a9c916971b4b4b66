"""Benchmark of the fine-scale pipeline: KLE sampling, assembly and solve (diffusion, f = 1, Q1).

Each case runs in its own process (so its peak memory is its own) and is timed warm: the
pipeline runs once to compile Firedrake's kernels, then again for the reported figures.

    scripts/env python -m benchmarks.fine_solve [--quick] [--out PATH] [--solver mumps,cg-gamg]
"""

from __future__ import annotations

import time

from tqdm import tqdm

from .common import (
    benchmark_arguments,
    emit_case,
    parse_benchmark_arguments,
    peak_rss_mib,
    print_table,
    run_case_in_subprocess,
)
from .record import write_result

FULL = [(2, 100), (2, 250), (2, 500), (3, 50)]
QUICK = [(2, 100), (2, 200), (3, 20)]


def run_case(dim: int, n: int, solver: str) -> dict:
    """Time one case in this process (warm) and return its figures."""
    import firedrake as fd

    from fem_ms import Diffusion, cell_field
    from fem_ms.coefficients import paper_kle
    from fem_ms.solvers import assemble_system, linear_solver, solver_parameters

    cells = (n,) * dim
    out = {"case": f"{n}^{dim}", "dim": dim, "cells_per_side": n}
    mesh = fd.UnitSquareMesh(n, n, quadrilateral=True) if dim == 2 else fd.UnitCubeMesh(n, n, n, hexahedral=True)
    V = fd.FunctionSpace(mesh, "CG", 1)
    for attempt in ("cold", "warm"):
        t0 = time.perf_counter()
        kle = paper_kle(cells)
        t1 = time.perf_counter()
        kappa_grid = kle.sample_kappa(int(attempt == "warm"))
        t2 = time.perf_counter()
        kappa = cell_field(mesh, kappa_grid)
        t3 = time.perf_counter()
        problem = Diffusion(V, kappa, 1.0)
        A, b = assemble_system(problem)
        t4 = time.perf_counter()
        u = fd.Function(V)
        linear_solver(A, solver_parameters(solver)).solve(u, b)
        t5 = time.perf_counter()
    out.update(dofs=V.dim(), kle_modes=kle.n_modes, kle_energy=round(kle.energy_captured, 4),
               kle_setup_s=t1 - t0, kle_sample_s=t2 - t1, kappa_to_mesh_s=t3 - t2,
               assembly_s=t4 - t3, solve_s=t5 - t4, total_s=t5 - t0,
               max_u=float(u.dat.data_ro.max()), peak_rss_mib=peak_rss_mib())
    return out


def targets(payload: dict) -> list[dict]:
    """None: the fine-solve figures are a reference for the others (issue 3 set no target)."""
    return []


def main(argv=None) -> None:
    parser = benchmark_arguments("fine_solve", __doc__, "100^2, 200^2 and 20^3")
    parser.add_argument("--solver", default="mumps,cg-gamg",
                        help="comma-separated fem_ms.solvers presets (default: mumps,cg-gamg)")
    args = parse_benchmark_arguments(parser, argv)
    if args.case:
        dim, n = map(int, args.case.split(","))
        emit_case(run_case(dim, n, args.solver))
        return
    cases = QUICK if args.quick else FULL
    rows = []
    jobs = [(dim, n, solver) for dim, n in cases for solver in args.solver.split(",")]
    for dim, n, solver in tqdm(jobs, desc="fine_solve cases", unit="case"):
        row = run_case_in_subprocess("benchmarks.fine_solve", ["--case", f"{dim},{n}", "--solver", solver])
        rows.append({**row, "solver": solver})
    print_table(rows, [("case", "case", ""), ("solver", "solver", ""), ("dofs", "DOFs", "d"),
                       ("kle_modes", "KLE modes", "d"),
                       ("kle_setup_s", "KLE setup s", ".3f"), ("kle_sample_s", "KLE sample s", ".3f"),
                       ("assembly_s", "assembly s", ".3f"), ("solve_s", "solve s", ".3f"),
                       ("peak_rss_mib", "peak MiB", ".0f")])
    payload = {"benchmark": "fine_solve", "quick": args.quick, "solvers": args.solver.split(","),
               "timing": "warm (second run in the process; kernels compiled), wall seconds",
               "problem": "diffusion, f = 1, Q1, u = 0 on the boundary, paper KLE kappa in [1, 9600]",
               "cases": rows}
    path = write_result(args.out, payload, targets(payload))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
