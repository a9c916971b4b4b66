"""The GMsFEM-NO paper's experiments against fem-ms: a calibrated ``paper`` convention and the tables it predicts.

Sub-commands (each with ``--quick``), all writing sections of ``results/gmsfem_no_paper.json``
(a section another sub-command wrote earlier is kept, stamped with the run that measured it):

``calibrate``
    The search behind the ``"paper"`` convention of :func:`fem_ms.coefficients.paper_kle` /
    :func:`~fem_ms.coefficients.paper_forcing`: its two free parameters, the scale a of
    κ = exp(a·Y) and the forcing's β, fitted on the GMsFEM column of the paper's Table 2 only
    (100² / 5×5, N_bf = 8, the four L2/H1 pairs). Two 1-D searches (a on the f = 1 cells, which
    do not depend on β; then β on the random-f cells at the chosen a), every evaluated point
    recorded; plus the search over a third parameter, a constant level κ₀ in κ = κ₀·exp(a·Y),
    which the Richards/diffusion difference would need (not part of the convention).
``classical``
    SLEPc GMsFEM errors with the convention as committed, not refitted: Table 2 on samples the
    fit did not see, Table 3 (250² / 10×10), Table 14 (heat, Δt = 2.5·10⁻⁶, T = 5·10⁻⁴) and
    Table 15 (Robin on y = 1), against the paper's figures.

Not here yet (issue 26 §2, §4): 3D (Table 4), GMsFEM-NO training for these tables, the
ablations (Tables 8, 11, 12, 13, 16); they would be further sub-commands writing further sections.

    scripts/env python -m benchmarks.gmsfem_no_paper calibrate [--quick] [--samples N]
    scripts/env python -m benchmarks.gmsfem_no_paper classical [--quick] [--samples N] [--tables 2 3 14 15]
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
from tqdm import tqdm

from .common import benchmark_arguments, parse_benchmark_arguments, print_table
from .compare import ErrorTable, Method, build_spaces, compare_with_fine
from .record import reused, threshold, write_result

N_BASIS = 8
# The paper's GMsFEM columns (N_bf = 8), (L2 %, H1 %), keyed by (problem, forcing).
PAPER = {
    "table2": {("diffusion", "f=1"): (1.15, 11.68), ("diffusion", "random f"): (2.82, 19.07),
               ("richards", "f=1"): (2.03, 11.68), ("richards", "random f"): (3.09, 20.20)},
    "table3": {("diffusion", "f=1"): (1.12, 14.01), ("diffusion", "random f"): (1.60, 21.49),
               ("richards", "f=1"): (1.79, 14.57), ("richards", "random f"): (1.62, 21.76)},
    "table14": {("heat", "f=1"): (0.72, 10.81), ("heat", "f=sin(pi x)cos(pi y)"): (1.13, 19.92)},
    "table15": {("robin", "f=1"): (1.11, 7.98), ("robin", "random f"): (1.09, 7.72)},
}
# Where each table's paper figures were measured: (fine cells per side, coarse cells per side).
PAPER_GRID = {"table2": (100, 5), "table3": (250, 10), "table14": (250, 10), "table15": (250, 10)}
# Seeds: the fit sees KLE/forcing seeds from 0, the classical tables from HELD_OUT on.
HELD_OUT = 100_000
# Tolerances of the targets, stated before the run: the fitted table within 25 % per cell, the
# tables it predicts within a factor 2, and Richards' f = 1 error clearly above diffusion's
# (the paper: 2.03 / 1.15 = 1.77).
FIT_TOLERANCE = 1.25
# Richards is not attempted where the Kirchhoff variable w exceeds this (u ~ e^w > 10^13).
MAX_KIRCHHOFF = 30.0
PREDICT_TOLERANCE = 2.0
RICHARDS_RATIO = 1.3


# --- evaluation ------------------------------------------------------------------------------

def evaluate(fine: int, coarse: int, cases: list[str], samples: int, kappa_scale: float, beta: float,
             seed0: int = 0, kappa_level: float = 1.0, desc: str = "") -> list[dict]:
    """Mean SLEPc GMsFEM errors (N_bf = 8) over ``samples`` κ = κ₀·exp(a·Y) of the paper's KLE.

    ``cases`` name (problem, forcing) pairs as ``"problem/forcing"``: problems ``diffusion``,
    ``richards``, ``heat`` (Δt = 2.5·10⁻⁶, T = 5·10⁻⁴), ``robin`` (diffusion, u = 0 on y = 0,
    Robin α = 1, u_const = 1 on y = 1); forcings ``f=1``, ``random f`` (γ = 2000, α = 1, this β)
    and ``f=sin(pi x)cos(pi y)``. Sample s uses KLE seed ``seed0 + 2s`` and forcing seed
    ``seed0 + 2s + 1``.
    """
    import firedrake as fd

    from fem_ms import Diffusion, Heat, Richards, RobinBoundary, cell_field, solve, structured_hierarchy
    from fem_ms.coefficients import GaussianRandomForcing, gaussian_to_kappa, paper_kle, vertex_field
    from fem_ms.solvers import ConvergenceError

    if not math.isfinite(kappa_level) or kappa_level <= 0:
        raise ValueError(f"kappa_level must be positive and finite, got {kappa_level!r}")
    problems = {"diffusion": (Diffusion, None, {}), "richards": (Richards, None, {}),
                "heat": (Heat, None, {"dt": 2.5e-6, "t_end": 5e-4}), "robin": (Diffusion, RobinBoundary(1.0, 1.0), {})}
    parsed = []
    for case in cases:
        problem, _, forcing = case.partition("/")
        if problem not in problems or forcing not in ("f=1", "random f", "f=sin(pi x)cos(pi y)"):
            raise ValueError(f"unknown case {case!r}")
        parsed.append((problem, forcing))
    pair = structured_hierarchy(coarse, fine, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kle = paper_kle((fine, fine))
    grf = GaussianRandomForcing((fine, fine), 2000.0, 1.0, beta)
    x, y = fd.SpatialCoordinate(pair.fine)
    sincos = fd.Function(V).interpolate(fd.sin(fd.pi * x) * fd.cos(fd.pi * y))
    slepc = Method("slepc", "slepc", {"progress": False}, N_BASIS)
    errors = ErrorTable("problem", "forcing")
    kirchhoff = {}
    for s in tqdm(range(samples), desc=desc or f"GMsFEM {fine}^2", unit="sample", leave=False):
        kappa = cell_field(pair.fine, kappa_level * gaussian_to_kappa(kle.sample_gaussian(seed0 + 2 * s),
                                                                      contrast=None, scale=kappa_scale))
        forcings = {"f=1": 1.0, "f=sin(pi x)cos(pi y)": sincos}
        if any(f == "random f" for _, f in parsed):
            forcings["random f"] = vertex_field(V, grf.sample(seed0 + 2 * s + 1))
        spaces = {}  # one offline stage per boundary condition
        diffusion_cache = {}
        for problem, forcing in parsed:
            cls, boundary, kwargs = problems[problem]
            if boundary not in spaces:
                spaces[boundary] = build_spaces(pair, V, kappa, [slepc], boundary=boundary)
            p = cls(V, kappa, forcings[forcing], boundary, **kwargs)
            if cls is Richards:
                # Kirchhoff: u = sign(w)(exp|w| − 1) with w the diffusion solution of the same κ, f,
                # so max|w| says whether u is near-linear (|w| ≪ 1) or beyond double precision
                w = diffusion_cache.get(forcing)
                if w is None:
                    w = diffusion_cache[forcing] = solve(Diffusion(V, kappa, forcings[forcing])).u
                w_max = float(np.abs(w.dat.data_ro).max())
                kirchhoff.setdefault((problem, forcing), []).append(w_max)
                if w_max > MAX_KIRCHHOFF:
                    errors.fail((problem, forcing), f"max |w| = {w_max:.3g} > {MAX_KIRCHHOFF}: u ~ exp(|w|) "
                                "is beyond what Newton/Picard from u = 0 reach")
                    continue
            try:
                reference = _fine_solution(p)
                if cls is Diffusion and boundary is None:
                    diffusion_cache[forcing] = reference
                c = compare_with_fine(p, spaces[boundary], reference)["slepc"]
            except ConvergenceError as error:  # recorded: a Richards solve that does not converge is a result
                errors.fail((problem, forcing), str(error))
                continue
            if not (math.isfinite(c["l2"]) and math.isfinite(c["h1"])):
                raise FloatingPointError(f"non-finite error for {problem}/{forcing}, sample {s}")
            errors.add((problem, forcing), c["l2"], c["h1"])
    rows = []
    for row in errors.rows():
        w = kirchhoff.get((row["problem"], row["forcing"]))
        if w:
            row["kirchhoff_max_abs_w"] = {"median": float(np.median(w)), "max": float(np.max(w))}
        rows.append({**row, "fine": fine, "coarse": coarse})
    return rows


def _fine_solution(problem):
    """The fine reference: Newton for Richards, Picard where Newton's basic line search fails
    (large |u|: the Haverkamp k(u) = 1/(1 + |u|) is not differentiable at u = 0)."""
    from fem_ms import Heat, solve
    from fem_ms.solvers import ConvergenceError

    if isinstance(problem, Heat):
        return solve(problem, progress=False).u
    try:
        return solve(problem).u
    except ConvergenceError:
        if problem.linear:
            raise
        return solve(problem, method="picard", max_iterations=2000).u


def log_misfit(rows: list[dict], paper: dict) -> float:
    """Mean squared log ratio ours/paper over the L2 and H1 figures of the ``rows`` that every
    sample solved (a row with failures is left out and listed by :func:`unsolved`)."""
    terms = []
    for row in rows:
        if row["l2_mean_pct"] is None or row.get("failed"):
            continue
        ref = paper[row["problem"], row["forcing"]]
        terms += [math.log(row["l2_mean_pct"] / ref[0]) ** 2, math.log(row["h1_mean_pct"] / ref[1]) ** 2]
    return float(np.mean(terms)) if terms else math.inf


def unsolved(rows: list[dict]) -> list[str]:
    """The cells of ``rows`` with a sample that has no solution."""
    return [f"{r['problem']}/{r['forcing']}" for r in rows if r.get("failed")]


def _with_paper(rows: list[dict], table: str) -> list[dict]:
    out = []
    for row in rows:
        l2, h1 = PAPER[table][row["problem"], row["forcing"]]
        solved = row["l2_mean_pct"] is not None and not row.get("failed")
        out.append({**row, "paper_l2_pct": l2, "paper_h1_pct": h1,
                    "l2_ratio": row["l2_mean_pct"] / l2 if solved else None,
                    "h1_ratio": row["h1_mean_pct"] / h1 if solved else None})
    return out


# --- sub-commands ----------------------------------------------------------------------------

def calibrate(quick: bool, samples: int, earlier: dict | None = None) -> dict:
    """The two 1-D searches of the convention and the third-parameter probe (see module doc).

    ``earlier``: a previous result file; its evaluated points of the same grid and sample count
    are reused (stamped with the run that measured them) instead of being solved again, so that
    a refined search only pays for its new points."""
    fine, coarse = (50, 5) if quick else PAPER_GRID["table2"]
    scales = (0.3, 1.0) if quick else (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.7, 0.9, 1.2, 1.6)
    betas = (0.5, 1.0) if quick else (0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 2.0)
    levels = (1.0, 0.01) if quick else (1.0, 0.3, 0.1, 0.03, 0.01)
    paper = PAPER["table2"]
    f1 = ["diffusion/f=1", "richards/f=1"]
    random_f = ["diffusion/random f", "richards/random f"]
    old = (earlier or {}).get("calibrate")
    if not old or (old["fine"], old["coarse"], old["samples"]) != (fine, coarse, samples):
        old = {}

    def previous(search: str, **key):
        for point in old.get(search, []):
            if all(point.get(k) == v for k, v in key.items()):
                return reused([point], earlier)[0]
        return None

    search_a = []
    for a in tqdm(scales, desc="calibrate: kappa scale a", unit="point"):
        point = previous("search_kappa_scale", kappa_scale=a)
        if point is not None:
            search_a.append(point)
            continue
        rows = evaluate(fine, coarse, f1, samples, a, 0.5, desc=f"a={a:g}")
        search_a.append({"kappa_scale": a, "rows": rows, "misfit": log_misfit(rows, paper), "unsolved": unsolved(rows)})
    best_a = min(search_a, key=lambda p: p["misfit"])["kappa_scale"]
    search_beta = []
    for beta in tqdm(betas, desc=f"calibrate: forcing beta at a={best_a:g}", unit="point"):
        point = previous("search_forcing_beta", kappa_scale=best_a, forcing_beta=beta)
        if point is not None:
            search_beta.append(point)
            continue
        rows = evaluate(fine, coarse, random_f, samples, best_a, beta, desc=f"beta={beta:g}")
        search_beta.append({"kappa_scale": best_a, "forcing_beta": beta, "rows": rows,
                            "misfit": log_misfit(rows, paper), "unsolved": unsolved(rows)})
    best_beta = min(search_beta, key=lambda p: p["misfit"])["forcing_beta"]
    search_level = []
    for level in tqdm(levels, desc="third parameter: kappa level", unit="point"):
        point = previous("search_kappa_level", kappa_scale=best_a, kappa_level=level)
        if point is not None:
            search_level.append(point)
            continue
        rows = evaluate(fine, coarse, f1, samples, best_a, best_beta, kappa_level=level, desc=f"k0={level:g}")
        by = {r["problem"]: r for r in rows}
        ratio = None if unsolved(rows) else by["richards"]["l2_mean_pct"] / by["diffusion"]["l2_mean_pct"]
        search_level.append({"kappa_scale": best_a, "kappa_level": level, "rows": rows, "unsolved": unsolved(rows),
                             "richards_over_diffusion_l2": ratio})
    return {"fine": fine, "coarse": coarse, "n_basis": N_BASIS, "samples": samples, "seeds": "KLE 2s, forcing 2s+1",
            "objective": "mean over the cells' L2 and H1 of log(ours/paper)^2 (Table 2, GMsFEM column)",
            "procedure": ("1-D search over a on the f=1 cells (diffusion, Richards; independent of beta), "
                          "then 1-D search over beta on the random-f cells at the best a; the third "
                          "parameter kappa_level (kappa = kappa_level*exp(a*Y)) probed at the best (a, beta) "
                          "and not adopted"),
            "search_kappa_scale": search_a, "search_forcing_beta": search_beta, "search_kappa_level": search_level,
            "best": {"kappa_scale": best_a, "forcing_beta": best_beta}}


def classical(quick: bool, samples: int, tables: list[str], paper_grid: bool = False) -> dict:
    """Tables 2, 3, 14, 15 with the committed ``paper`` convention, on held-out seeds (at the
    paper's grids with ``paper_grid``, else at :data:`GRIDS` where they are smaller)."""
    from fem_ms.coefficients import PAPER_CONVENTION_FORCING_BETA, PAPER_CONVENTION_KAPPA_SCALE

    a, beta = PAPER_CONVENTION_KAPPA_SCALE, PAPER_CONVENTION_FORCING_BETA
    sections = {}
    for table in tables:
        fine, coarse = (50, 5) if quick else PAPER_GRID[table] if paper_grid else GRIDS.get(table, PAPER_GRID[table])
        cases = [f"{p}/{f}" for p, f in PAPER[table]]
        t0 = time.process_time()
        rows = evaluate(fine, coarse, cases, samples, a, beta, seed0=HELD_OUT, desc=table)
        sections[table] = {"fine": fine, "coarse": coarse, "n_basis": N_BASIS, "paper_grid": list(PAPER_GRID[table]),
                           "kappa_scale": a, "forcing_beta": beta, "cpu_s": time.process_time() - t0,
                           "rows": _with_paper(rows, table)}
    return sections


# Grids of the full classical run where they differ from the paper's (time on this CPU).
GRIDS = {"table14": (100, 5)}


# --- targets ---------------------------------------------------------------------------------

def _worst_cell(section: dict) -> tuple[float | None, list[str]]:
    factors, notes = [], []
    for row in section["rows"]:
        if row["l2_ratio"] is None:
            notes.append(f"{row['problem']}/{row['forcing']}: no solution on {row.get('failed', 0)} of "
                         f"{row['samples'] + row.get('failed', 0)} samples ({row.get('failure')})")
            continue
        for norm in ("l2", "h1"):
            r = row[f"{norm}_ratio"]
            factors.append(max(r, 1 / r))
            notes.append(f"{row['problem']}/{row['forcing']} {norm.upper()}: {row[f'{norm}_mean_pct']:.2f} % vs "
                         f"paper {row[f'paper_{norm}_pct']:.2f} % (x{r:.2f})")
    return (max(factors) if factors else None), notes


def targets(payload: dict) -> list[dict]:
    """Per table, the worst cell's factor between our GMsFEM error and the paper's (either
    direction; ≤ 1.25 on the fitted Table 2, ≤ 2 on the tables predicted without refitting), and
    Richards' f = 1 L2 error over diffusion's (> 1.3; the paper's 1.77)."""
    out = []
    for table, tolerance in (("table2", FIT_TOLERANCE), ("table3", PREDICT_TOLERANCE),
                             ("table14", PREDICT_TOLERANCE), ("table15", PREDICT_TOLERANCE)):
        section = payload.get(table)
        kind = "fitted on this table" if table == "table2" else "predicted, not refitted"
        name = f"GMsFEM error vs the paper's {table.replace('table', 'Table ')}, worst cell ({kind})"
        comparator = f"the paper's GMsFEM column of {table.replace('table', 'Table ')}"
        solved_name = f"share of the paper's {table.replace('table', 'Table ')} cells solved on every sample"
        if section is None:
            out.append(threshold(name, None, "<=", tolerance, "x", comparator, None))
            out.append(threshold(solved_name, None, ">=", 1.0, "", "every cell of the paper's table", None))
            continue
        worst, notes = _worst_cell(section)
        grid = f"{section['fine']}^2 / {section['coarse']}x{section['coarse']}"
        caveats = [f"ours at {grid}, the paper's at {section['paper_grid'][0]}^2"] + notes
        if table == "table2":
            caveats.insert(0, "seeds not seen by the fit")
        solved = [r for r in section["rows"] if r["l2_ratio"] is not None]
        if len(solved) < len(section["rows"]):
            caveats.insert(0, "worst over the solved cells only; the unsolved ones count in the next target")
        n = min((r["samples"] for r in solved), default=None)
        out.append(threshold(name, worst, "<=", tolerance, "x", comparator, n, caveats))
        out.append(threshold(solved_name, len(solved) / len(section["rows"]), ">=", 1.0, "",
                             "every cell of the paper's table", len(section["rows"]),
                             [note for note in notes if "no solution" in note]))
    section = payload.get("table2")
    name = "Richards over diffusion L2 error at f = 1 (Table 2 setting)"
    if section is None:
        out.append(threshold(name, None, ">", RICHARDS_RATIO, "x", "diffusion on the same samples", None))
    else:
        by = {(r["problem"], r["forcing"]): r for r in section["rows"]}
        richards, diffusion = by["richards", "f=1"], by["diffusion", "f=1"]
        solved = richards["l2_ratio"] is not None and diffusion["l2_ratio"] is not None
        ratio = richards["l2_mean_pct"] / diffusion["l2_mean_pct"] if solved else None
        out.append(threshold(name, ratio, ">", RICHARDS_RATIO, "x", "diffusion on the same samples",
                             richards["samples"] or None, ["the paper's ratio: 2.03 / 1.15 = 1.77"],
                             missing="Richards or diffusion at f = 1 unsolved"))
    return out


# --- command line ----------------------------------------------------------------------------

SECTIONS = {"calibrate": ("calibrate",), "classical": ("table2", "table3", "table14", "table15")}


def main(argv=None) -> None:
    parser = benchmark_arguments("gmsfem_no_paper", __doc__,
                                 "50^2 / 5x5, 1 sample, 2 points per search")
    parser.add_argument("command", nargs="?", default="all", choices=sorted(SECTIONS) + ["all"],
                        help="the table group to run (default: all, calibrate then classical)")
    parser.add_argument("--samples", type=int, default=None,
                        help="KLE samples per evaluation (default: calibrate 8, classical 10; quick 1)")
    parser.add_argument("--tables", nargs="+", default=None, choices=["2", "3", "14", "15"],
                        help="classical: the tables to run (default all)")
    parser.add_argument("--paper-grid", action="store_true",
                        help="classical: every table at the paper's grid (default: heat at 100^2)")
    args = parse_benchmark_arguments(parser, argv)
    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples must be positive, got {args.samples}")
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    # sections other sub-commands wrote earlier stay, stamped with the run that measured them
    payload = {"benchmark": "gmsfem_no_paper", "quick": args.quick}
    for key in (k for group in SECTIONS.values() for k in group):
        if key in earlier:
            payload[key] = reused([earlier[key]], earlier)[0]
    if args.command in ("calibrate", "all"):
        t0 = time.process_time()
        payload["calibrate"] = result = calibrate(args.quick, args.samples or (1 if args.quick else 8), earlier)
        result["cpu_s_this_run"] = time.process_time() - t0  # reused points cost nothing here
        for point in result["search_kappa_scale"] + result["search_forcing_beta"] + result["search_kappa_level"]:
            print({k: v for k, v in point.items() if k != "rows"},
                  [(r["problem"], r["forcing"], r["l2_mean_pct"], r["h1_mean_pct"], r.get("failed"))
                   for r in point["rows"]])
        print("best:", result["best"])
    if args.command in ("classical", "all"):
        tables = [f"table{t}" for t in (args.tables or ["2", "3", "14", "15"])]
        sections = classical(args.quick, args.samples or (1 if args.quick else 10), tables, args.paper_grid)
        payload.update(sections)
        for table, section in sections.items():
            print(table, f"{section['fine']}^2")
            print_table(section["rows"], [("problem", "problem", ""), ("forcing", "forcing", ""),
                                          ("l2_mean_pct", "L2 %", ".2f"), ("paper_l2_pct", "paper", ".2f"),
                                          ("h1_mean_pct", "H1 %", ".2f"), ("paper_h1_pct", "paper", ".2f")])
    path = write_result(args.out, payload, targets(payload))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
