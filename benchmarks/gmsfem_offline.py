"""Benchmark of the GMsFEM offline stage against a straightforward scipy implementation.

For each case: wall time of the offline stage split into neighbourhood geometry, local
assembly (element matrices + local A_i, S_i), SLEPc factorization, SLEPc eigensolve and R
assembly; the online solve; the same local problems solved with scipy (``eigsh`` shift-invert,
sparse LU, a Python loop over neighbourhoods); the floor (the local Cholesky factorizations
alone, CHOLMOD through PETSc). Warm: the offline stage runs once to compile kernels, then again
for the figures. 1 and 2 MPI ranks (rank-maximum times).

    scripts/env python -m benchmarks.gmsfem_offline [--quick] [--out PATH]
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from .common import (
    benchmark_arguments,
    emit_case,
    parse_benchmark_arguments,
    peak_rss_mib,
    print_table,
    run_case_in_subprocess,
)
from .record import threshold, write_result

FULL = [(2, 100, 5), (2, 250, 10), (3, 50, 5)]
QUICK = [(2, 100, 5), (2, 250, 10), (3, 20, 5)]
PAPER_S = {(2, 100): 16.9, (2, 250): 210.0, (3, 50): 935.0, (3, 100): 10547.0}
# issue 4's targets, warm, on this 2-core CPU: (dim, fine) → (seconds, ranks). The 2D targets name no
# rank count: they are judged on one rank, the stricter reading
TARGET_S = {(2, 100): (0.3, 1), (2, 250): (3.0, 1), (3, 50): (30.0, 2)}
SCIPY_TARGET = 3.0  # at least this many times faster than scipy on the same local problems
N_BASIS = 8
# issue 28 §1: eigen stage and whole offline stage over the factorization floor (1 rank), 2 ranks vs 1
FLOOR_CASES, EIGEN_OVER_FLOOR, OFFLINE_OVER_FLOOR = [(2, 100), (2, 250), (3, 50)], 1.5, 2.0
SCALING_CASES, RANK_SPEEDUP = [(2, 250), (3, 50)], 1.8
SCIPY_SUBSET_3D = 16  # 3D scipy eigsh on a subset of neighbourhoods, scaled by kind counts


def _scipy_eigs(A, S, n):
    import scipy.sparse.linalg as spla

    return spla.eigsh(A.tocsc(), k=n, M=S.tocsc(), sigma=-1e-3, which="LM")


def _cholesky_floor(patches, indices) -> float:
    """Seconds to factor A_i − σ S_i (σ = −1e-3) for the given neighbourhoods, CHOLMOD via PETSc."""
    from firedrake.petsc import PETSc

    total = 0.0
    for i in indices:
        A, S = patches.local_matrices(i)
        K = (A + 1e-3 * S).tocsr()
        M = PETSc.Mat().createAIJ(K.shape, csr=(K.indptr, K.indices, K.data), comm=PETSc.COMM_SELF)
        ksp = PETSc.KSP().create(comm=PETSc.COMM_SELF)
        ksp.setOperators(M)
        ksp.setType("preonly")
        ksp.getPC().setType("cholesky")
        ksp.getPC().setFactorSolverType("cholmod")
        t0 = time.perf_counter()
        ksp.setUp()
        total += time.perf_counter() - t0
        ksp.destroy(), M.destroy()
    return total


def run_case(dim: int, fine: int, coarse: int, compare: bool) -> dict:
    import firedrake as fd
    from pyop2.mpi import COMM_WORLD

    from fem_ms import Diffusion, cell_field, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms.gmsfem import GMsFEM

    comm = COMM_WORLD
    pair = structured_hierarchy(coarse, fine, dim=dim, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kle = paper_kle((fine,) * dim)
    for seed in (0, 1):  # seed 0 compiles the kernels; seed 1 is timed
        kappa = cell_field(pair.fine, kle.sample_kappa(seed))
        problem = Diffusion(V, kappa, 1.0)
        comm.barrier()
        t0 = time.perf_counter()
        g = GMsFEM(problem, pair, n_basis=N_BASIS, provider_options={"progress": False}).offline()
        offline_total = time.perf_counter() - t0
        g.solve()
        if seed == 0:  # κ-independent neighbourhood geometry: computed once per mesh pair
            geometry_once = g.timings["geometry"]
    timings = {k: comm.allreduce(v, op=_max()) for k, v in g.timings.items()}
    out = {"case": f"{fine}^{dim}/{coarse}^{dim}", "dim": dim, "fine": fine, "coarse": coarse,
           "ranks": comm.size, "dofs": V.dim(), "N_v": len(g.space.neighbourhoods), "n_basis": N_BASIS,
           "largest_local_dofs": max(n.size for n in g.space.neighbourhoods),
           "offline_total_s": comm.allreduce(offline_total, op=_max()),
           "geometry_once_s": comm.allreduce(geometry_once, op=_max()),
           **{f"{k}_s": v for k, v in timings.items()},
           "peak_rss_mib": comm.allreduce(peak_rss_mib(), op=_max()),
           "paper_offline_s": PAPER_S.get((dim, fine)), "target_s": TARGET_S.get((dim, fine), (None,))[0]}
    out["eigen_stage_s"] = timings["factorization"] + timings["eigensolve"]
    if compare and comm.size == 1:
        idx = list(range(len(g.space.neighbourhoods)))
        subset = idx
        if dim == 3:  # a spread of kinds, scaled to all neighbourhoods by kind
            rng = np.random.default_rng(0)
            subset = sorted(rng.choice(idx, size=min(SCIPY_SUBSET_3D, len(idx)), replace=False).tolist())
        t_assembly, t_scipy, per_kind = 0.0, 0.0, {}
        for i in tqdm(subset, desc="scipy eigsh", unit="nbh", leave=False):
            t0 = time.perf_counter()
            A, S = g.space.patches.local_matrices(i)
            t1 = time.perf_counter()
            _scipy_eigs(A, S, N_BASIS)
            t2 = time.perf_counter()
            t_assembly += t1 - t0
            t_scipy += t2 - t1
            per_kind.setdefault(g.space.neighbourhoods[i].kind, []).append(t2 - t1)
        if subset != idx:
            counts = {}
            for n in g.space.neighbourhoods:
                counts[n.kind] = counts.get(n.kind, 0) + 1
            t_scipy = sum(np.mean(per_kind[k]) * c for k, c in counts.items() if k in per_kind)
        floor = _cholesky_floor(g.space.patches, subset)
        if subset != idx:
            floor *= len(idx) / len(subset)
        out.update(scipy_eigsh_s=t_scipy, scipy_estimated_from_subset=subset != idx,
                   scipy_subset_size=len(subset),
                   speedup_vs_scipy_eigen_stage=t_scipy / out["eigen_stage_s"],
                   cholesky_floor_s=floor, eigen_stage_over_floor=out["eigen_stage_s"] / floor)
    return out


def targets(payload: dict) -> list[dict]:
    """Issue 4's targets from the rows: the offline stage under 0.3 s (100², 1 rank), 3 s (250²,
    1 rank) and 30 s (50³, 2 ranks); the eigen stage at least 3× faster than scipy's ``eigsh``
    on the same local problems (like for like: neither includes assembly or R)."""
    rows = payload["cases"]

    def row(dim, fine, ranks):
        return next((r for r in rows if (r["dim"], r["fine"], r["ranks"]) == (dim, fine, ranks)), None)

    out = []
    for (dim, fine), (seconds, ranks) in TARGET_S.items():
        r = row(dim, fine, ranks)
        other = row(dim, fine, 3 - ranks)
        caveats = ["one κ, timed once after a warm-up solve of another κ; wall seconds, maximum over ranks"]
        if other is not None:
            caveats.append(f"on {_ranks(other['ranks'])}: {other['offline_total_s']:.3f} s")
        out.append(threshold(f"offline stage at {fine}^{dim} on {_ranks(ranks)}", r and r["offline_total_s"], "<",
                             seconds, " s", "absolute (issue 4); GMsFEM(...).offline() for a new κ on a mesh pair "
                             "seen before, N_bf = 8", 1, caveats, missing=f"{fine}^{dim} not run (quick run)"))
    for dim, fine in TARGET_S:
        r = row(dim, fine, 1)
        measured = r and r.get("speedup_vs_scipy_eigen_stage")
        caveats = []
        if measured is not None:
            caveats.append(f"the whole offline stage (with Firedrake assembly and R) is "
                           f"{r['scipy_eigsh_s'] / r['offline_total_s']:.2f}× faster than scipy's eigen stage alone")
            if r["scipy_estimated_from_subset"]:
                caveats.append(f"scipy timed on {r['scipy_subset_size']} of {r['N_v']} neighbourhoods, "
                               "scaled to all of them by neighbourhood kind")
        out.append(threshold(f"eigen stage vs scipy eigsh at {fine}^{dim}", measured, ">=", SCIPY_TARGET, "×",
                             "scipy.sparse.linalg.eigsh(sigma=-1e-3, sparse LU) on the same A_i, S_i in the same "
                             "run, 1 rank; ours: SLEPc factorization + eigensolve", r and r["N_v"], caveats,
                             missing=f"{fine}^{dim} not run (quick run)"))
    return out + _floor_targets(row)


def _floor_targets(row) -> list[dict]:
    """Issue 28 §1: the eigen stage within 1.5× and the whole offline stage within 2× of the
    factorization floor at 100², 250² and 50³ (1 rank, same run), and 2 ranks at least 1.8×
    faster than 1 at 250² and 50³."""
    out = []
    noise = "wall seconds on a 2-core machine shared with other processes, one κ timed once"
    for dim, fine in FLOOR_CASES:
        r = row(dim, fine, 1)
        floor = r and r.get("cholesky_floor_s")
        caveats = [noise]
        if floor and r["scipy_estimated_from_subset"]:
            caveats.append(f"floor timed on {r['scipy_subset_size']} of {r['N_v']} neighbourhoods, scaled by count")
        comparator = ("the CHOLMOD factorizations of A_i + 1e-3 S_i alone (through PETSc), the same local problems "
                      "in the same run")
        missing = f"{fine}^{dim} not run (quick run)"
        out.append(threshold(f"eigen stage over the factorization floor at {fine}^{dim}",
                             floor and r["eigen_stage_s"] / floor, "<=", EIGEN_OVER_FLOOR, "×", comparator,
                             r and r["N_v"], caveats, missing=missing))
        out.append(threshold(f"offline stage over the factorization floor at {fine}^{dim}",
                             floor and r["offline_total_s"] / floor, "<=", OFFLINE_OVER_FLOOR, "×", comparator,
                             r and r["N_v"], caveats, missing=missing))
    for dim, fine in SCALING_CASES:
        one, two = row(dim, fine, 1), row(dim, fine, 2)
        measured = one and two and one["offline_total_s"] / two["offline_total_s"]
        out.append(threshold(f"offline stage on 2 ranks vs 1 at {fine}^{dim}", measured, ">=", RANK_SPEEDUP, "×",
                             "the same offline stage on 1 rank in the same run", 1, [noise],
                             missing=f"{fine}^{dim} not run on 1 and 2 ranks (quick run)"))
    return out


def _ranks(n: int) -> str:
    return f"{n} rank{'s' if n > 1 else ''}"


def _max():
    from mpi4py import MPI

    return MPI.MAX


def main(argv=None) -> None:
    parser = benchmark_arguments("gmsfem_offline", __doc__, "20^3 instead of 50^3")
    args = parse_benchmark_arguments(parser, argv)
    if args.case:
        dim, fine, coarse = map(int, args.case.split(","))
        emit_case(run_case(dim, fine, coarse, compare=True))
        return
    rows = []
    jobs = [(c, r) for c in (QUICK if args.quick else FULL) for r in (1, 2)]
    for (dim, fine, coarse), ranks in tqdm(jobs, desc="gmsfem_offline cases", unit="case"):
        rows.append(run_case_in_subprocess("benchmarks.gmsfem_offline",
                                           ["--case", f"{dim},{fine},{coarse}"], ranks))
    print_table(rows, [("case", "case", ""), ("ranks", "ranks", "d"), ("local_assembly_s", "assembly", ".3f"),
                       ("factorization_s", "factor", ".3f"), ("eigensolve_s", "eigensolve", ".3f"),
                       ("restriction_s", "R", ".3f"), ("offline_total_s", "offline", ".3f"),
                       ("target_s", "target", "g"), ("online_s", "online", ".3f"),
                       ("scipy_eigsh_s", "scipy eigsh", ".3f"), ("cholesky_floor_s", "floor", ".3f")])
    payload = {
        "benchmark": "gmsfem_offline", "quick": args.quick, "n_basis": N_BASIS,
        "timing": "warm (second offline stage in the process), wall seconds, max over ranks",
        "definitions": {
            "offline_total_s": "GMsFEM(...).offline() for a new kappa on a mesh pair seen before: "
                               "local assembly + eigensolves + R (the kappa-independent geometry is cached)",
            "geometry_once_s": "neighbourhoods and gathered fine numbering, computed once per mesh pair",
            "geometry_s": "gathering the fine mesh numbering and building neighbourhoods (kappa-independent)",
            "local_assembly_s": "broken-space element matrices (Firedrake) + local A_i, S_i",
            "factorization_s": "SLEPc EPSSetUp: shift-and-invert Cholesky (CHOLMOD) of every local problem",
            "eigensolve_s": "SLEPc EPSSolve of every local problem",
            "eigen_stage_s": "factorization + eigensolve",
            "scipy_eigsh_s": "scipy.sparse.linalg.eigsh(sigma=-1e-3) on the same A_i, S_i (sparse LU)",
            "cholesky_floor_s": "factorizations of A_i + 1e-3 S_i alone (CHOLMOD), no eigen-iterations",
            "paper_offline_s": "GMsFEM-NO paper, classical offline stage"},
        "not_run": {"100^3/10^3": "not attempted: 1.03M fine DOFs, 729 neighbourhoods of up to 68,921 DOFs; "
                                 "scaling the measured 50^3 Cholesky floor by N^2 per local problem "
                                 "estimates ~1.5 h of factorizations on one core (docs/benchmarks.md)"},
        "cases": rows}
    path = write_result(args.out, payload, targets(payload))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
