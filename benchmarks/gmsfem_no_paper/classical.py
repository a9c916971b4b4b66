"""``classical``: SLEPc GMsFEM errors with the ``paper`` convention as committed, not refitted.

Table 2 on samples the fit did not see, Table 3 (250² / 10×10), Table 14 (heat,
Δt = 2.5·10⁻⁶, T = 5·10⁻⁴) and Table 15 (Robin on y = 1), against the paper's figures.
"""

from __future__ import annotations

import time

from ..common import print_table
from ..record import threshold
from .paper import HELD_OUT, N_BASIS, PAPER, PAPER_GRID, evaluate, with_paper, worst_cell

COMMAND = "classical"
ORDER = 1
SECTIONS = ("table2", "table3", "table14", "table15")
SUMMARY = "Tables 2, 3, 14, 15: SLEPc GMsFEM with the committed paper convention"

# Tolerances of the targets, stated before the run: the fitted table within 25 % per cell, the
# tables it predicts within a factor 2, and Richards' f = 1 error clearly above diffusion's
# (the paper: 2.03 / 1.15 = 1.77).
FIT_TOLERANCE = 1.25
PREDICT_TOLERANCE = 2.0
RICHARDS_RATIO = 1.3
# Grids of the full classical run where they differ from the paper's (time on this CPU).
GRIDS = {"table14": (100, 5)}


def add_arguments(parser) -> None:
    parser.add_argument("--samples", type=int, default=None, help="KLE samples per table (default 10; quick 1)")
    parser.add_argument("--tables", nargs="+", default=None, choices=["2", "3", "14", "15"],
                        help="the tables to run (default all)")
    parser.add_argument("--paper-grid", action="store_true",
                        help="every table at the paper's grid (default: heat at 100^2)")


def run(args, earlier: dict) -> dict:
    tables = [f"table{t}" for t in (args.tables or ["2", "3", "14", "15"])]
    sections = classical(args.quick, args.samples or (1 if args.quick else 10), tables, args.paper_grid)
    for table, section in sections.items():
        print(table, f"{section['fine']}^2")
        print_table(section["rows"], [("problem", "problem", ""), ("forcing", "forcing", ""),
                                      ("l2_mean_pct", "L2 %", ".2f"), ("paper_l2_pct", "paper", ".2f"),
                                      ("h1_mean_pct", "H1 %", ".2f"), ("paper_h1_pct", "paper", ".2f")])
    return sections


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
                           "rows": with_paper(rows, table)}
    return sections




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
        worst, notes = worst_cell(section["rows"])
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
