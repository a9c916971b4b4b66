"""GMsFEM vs GMsFEM-NO (each subspace loss) vs a standalone F-FNO, on unseen κ and forcings.

The GMsFEM-NO models learn the local bases from κ alone (f = 1 never enters them); the
standalone F-FNO learns κ → u from the fine solutions with f = 1, the same κ samples and the
same optimiser. Test: new κ samples, diffusion and Richards, f = 1 and the paper's random
forcing (never seen by either network). Mean relative L2/H1 (%) against the fine solution.
The SAL model is also evaluated with bfloat16 inference (``precision="bfloat16"``), the
setting of the fastest figures in benchmarks/basis_speed.py.

The subspace losses are measured in the energy inner product of the local problem (train_basis's
default; ``--inner-product euclidean`` for the pointwise one). The SAL and SAL-PR models predict
8 functions more than N_bf − 1 and are trained for their span to contain the true one; the
provider keeps the N_bf lowest Rayleigh–Ritz vectors of the local problem in that span
(``--oversample``; RBFL2 compares functions one by one and predicts N_bf − 1). Default sized
for this 2-core CPU (192 training κ, 20 epochs of batches of 4 at lr 3·10⁻³, width 16, 8 modes;
its run time is in docs/benchmarks.md); ``--quick`` is a smoke-size run (same schema). A
full-size configuration for a GPU: ``--train-samples 1000 --epochs 100 --width 32 --modes 16``.

    scripts/env python -m benchmarks.gmsfem_no_accuracy [--quick] [--out PATH]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .common import benchmark_arguments, parse_benchmark_arguments, print_table
from .compare import ErrorTable, Method, build_spaces, compare_with_fine, relative_errors
from .record import Target, threshold, write_result

PAPER_NO = {("diffusion", "f=1"): (1.06, 11.57), ("diffusion", "random f"): (2.81, 19.03),
            ("richards", "f=1"): (1.87, 11.25), ("richards", "random f"): (2.99, 19.60)}
LOSSES = ("sal", "sal-pr", "rbfl2")
TEST_SEED = 100_000
OVERSAMPLE = 8
SLEPC, BF16 = "GMsFEM (SLEPc)", "GMsFEM-NO (sal, bfloat16)"
# keys of ``offline_per_solve_s`` by method label
OFFLINE_KEYS = {SLEPC: "slepc", **{f"GMsFEM-NO ({loss})": loss for loss in LOSSES}, BF16: "sal, bfloat16"}
TRANSFER = ((250, 10), (500, 10))
WITHIN = 5.0  # % above GMsFEM's error, in every cell: issue 6's accuracy target
FAR_WORSE = 10.0  # × GMsFEM-NO's error: this benchmark's reading of "far worse" (issue 6 gives no number)


def targets(payload: dict) -> list[dict]:
    """Issue 6's accuracy targets from the error rows: each GMsFEM-NO model within 5 % of GMsFEM's
    error (relative L2 and H1, against SLEPc's in the same cell) in every cell; the standalone
    F-FNO far worse than GMsFEM-NO on the random forcing it never saw."""
    rows, n = payload["errors"], payload["setup"]["test_samples"]
    slepc = {(r["problem"], r["forcing"]): r for r in rows if r["method"] == SLEPC}
    seed = payload["setup"].get("seed", 0)
    out = []
    for method in dict.fromkeys(r["method"] for r in rows if r["method"].startswith("GMsFEM-NO")):
        failed = [r for r in rows if r["method"] == method and r.get("failed")]
        if failed:  # no solution on some κ: not within 5 % of GMsFEM there
            out.append(Target(f"{method} within {WITHIN:g} % of GMsFEM's error in every cell", f"≤ {WITHIN:g} %", None,
                              "GMsFEM with SLEPc bases on the same test κ, problem and forcing", n, False,
                              [f"a degenerate space on {failed[0]['failed']} of {n} test κ ({failed[0]['failure']})"]
                              ).record())
            continue
        gaps = {(r["problem"], r["forcing"], norm): 100 * (r[f"{norm}_mean_pct"] / slepc[r["problem"], r["forcing"]][
            f"{norm}_mean_pct"] - 1) for r in rows if r["method"] == method for norm in ("l2", "h1")}
        worst = max(gaps, key=gaps.get)
        out.append(threshold(f"{method} within {WITHIN:g} % of GMsFEM's error in every cell", gaps[worst], "<=",
                             WITHIN, " %", "GMsFEM with SLEPc bases on the same test κ, problem and forcing "
                             "(mean relative L2 and H1-seminorm errors against the fine solution)", n,
                             [f"worst cell: {worst[0]}, {worst[1]}, {worst[2].upper()}",
                              f"one training seed ({seed}); the networks never saw a forcing"]))
    standalone = next((r for r in rows if r["method"] == "standalone F-FNO" and r["forcing"] == "random f"), None)
    learned = [r for r in rows if r["method"].startswith("GMsFEM-NO") and (r["problem"], r["forcing"])
               == ("diffusion", "random f")]
    best = min(learned, key=lambda r: r["l2_mean_pct"]) if learned else None
    out.append(threshold(
        "standalone F-FNO far worse than GMsFEM-NO on the unseen random forcing",
        standalone["l2_mean_pct"] / best["l2_mean_pct"] if standalone and best else None, ">=", FAR_WORSE, "×",
        f"the most accurate GMsFEM-NO model ({best['method'] if best else '-'}) on the same test κ, diffusion with the "
        "paper's random forcing; the standalone F-FNO was trained on f = 1 solutions of the same κ", n,
        [f"issue 6 says 'far worse' without a number; {FAR_WORSE:g}× is this benchmark's threshold (the paper's "
         "standalone errors: 113–6554 %)"] + ([f"standalone relative L2 {standalone['l2_mean_pct']:.1f} %"]
                                              if standalone else [])))
    return out


def main(argv=None) -> None:
    from fem_ms_torch.basis.train import INNER_PRODUCTS
    from fem_ms_torch.registry import available_models

    parser = benchmark_arguments("gmsfem_no_accuracy", __doc__, "4 training κ, 1 epoch, width 8, 4 modes, 2 test κ, "
                                 "transfer to 250^2 only")
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--test-samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--modes", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--inner-product", choices=INNER_PRODUCTS, default="energy",
                        help="of the subspace losses (train_basis; default: energy)")
    parser.add_argument("--architecture", choices=available_models(operator=True), default="ffno",
                        help="GMsFEM-NO backbone (train_basis)")
    parser.add_argument("--oversample", type=int, default=OVERSAMPLE,
                        help=f"extra functions the SAL and SAL-PR models predict, reduced to N_bf by Rayleigh-Ritz "
                             f"(train_basis; default {OVERSAMPLE}; RBFL2 compares functions one by one: none)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the GMsFEM-NO models (default 0)")
    args = parse_benchmark_arguments(parser, argv)
    q = args.quick
    n_train = args.train_samples or (4 if q else 192)
    n_test = args.test_samples or (2 if q else 10)
    epochs = args.epochs or (1 if q else 20)
    width = args.width or (8 if q else 16)
    modes = args.modes or (4 if q else 8)
    batch_size = args.batch_size or 4
    lr = args.lr or 3e-3

    import torch

    import firedrake as fd

    torch.set_num_threads(2)  # training has the machine to itself (OMP_NUM_THREADS=1 is for MPI runs)

    from fem_ms import Diffusion, Richards, cell_field, solve, structured_hierarchy, vertex_field
    from fem_ms.coefficients import paper_forcing, paper_kle
    from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig, generate
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.standalone import StandaloneSolver, train_standalone

    t_start = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="fem-ms-no-")  # datasets and checkpoints, removed at the end
    work = Path(scratch.name)
    timings = {}
    t0 = time.perf_counter()
    basis_set = generate(GMsFEMBasisConfig(name="basis", samples=n_train, fine=100, coarse=5, n_basis=8,
                                           train_fraction=1.0), work)
    level_set = generate(MultilevelConfig(name="levels", samples=n_train, levels=(100,), forcing="constant",
                                          train_fraction=1.0), work)
    timings["data_generation_s"] = time.perf_counter() - t0
    checkpoints = {}
    for loss in LOSSES:
        t0 = time.perf_counter()
        checkpoints[loss] = train_basis(basis_set, work / f"no_{loss}.pt", epochs=epochs, loss=loss, width=width,
                                        depth=4, modes=modes, batch_size=batch_size, lr=lr,
                                        inner_product=args.inner_product, architecture=args.architecture,
                                        oversample=0 if loss == "rbfl2" else args.oversample, seed=args.seed)
        timings[f"train_{loss}_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    standalone = StandaloneSolver(train_standalone(level_set, 100, work / "standalone.pt", epochs=epochs,
                                                   width=width, depth=4, modes=modes, batch_size=batch_size, lr=lr))
    timings["train_standalone_s"] = time.perf_counter() - t0

    pair = structured_hierarchy(5, 100, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kle, forcing = paper_kle((100, 100)), paper_forcing((100, 100))
    methods = [Method(SLEPC, "slepc", {"progress": False})]
    # the networks' own bases (benchmarks.learned_trust measures the a-posteriori check)
    methods += [Method(f"GMsFEM-NO ({loss})", "learned", {"checkpoint": str(checkpoints[loss]), "verify": "off"})
                for loss in LOSSES]
    methods += [Method(BF16, "learned", {"checkpoint": str(checkpoints["sal"]), "precision": "bfloat16",
                                         "verify": "off"})]
    errors = ErrorTable("problem", "forcing", "method")
    offline = {m.label: [] for m in methods}
    for s in tqdm(range(n_test), desc="test samples", unit="sample"):
        kappa_grid = kle.sample_kappa(TEST_SEED + 2 * s)
        kappa = cell_field(pair.fine, kappa_grid)
        f_grid = forcing.sample(TEST_SEED + 2 * s + 1)
        failures: dict = {}  # one offline stage per method serves the four problems
        spaces = build_spaces(pair, V, kappa, methods, failures=failures)
        for label, space in spaces.items():
            offline[label].append(space.timings["offline"])
        for f_name, f, f_vertices in (("f=1", 1.0, np.ones((101, 101))),
                                      ("random f", vertex_field(V, f_grid), f_grid)):
            for cls in (Diffusion, Richards):
                problem = cls(V, kappa, f)
                ref = solve(problem).u
                errors.add_comparison((cls.name, f_name), compare_with_fine(problem, spaces, ref))
                for label, message in failures.items():
                    errors.fail((cls.name, f_name, label), message)
                if cls is Diffusion:
                    pred = standalone(kappa_grid, f_vertices).double().numpy()
                    errors.add((cls.name, f_name, "standalone F-FNO"), *relative_errors(vertex_field(V, pred), ref))
    rows = errors.rows()
    for row in rows:
        paper = PAPER_NO.get((row["problem"], row["forcing"])) if row["method"].startswith("GMsFEM-NO") else None
        row.update(paper_no_l2_pct=paper[0] if paper else None, paper_no_h1_pct=paper[1] if paper else None)
        # relative gap to GMsFEM (SLEPc) in the same cell
        ref = next(r for r in rows
                   if (r["problem"], r["forcing"], r["method"]) == (row["problem"], row["forcing"], SLEPC))
        row["l2_vs_slepc"] = row["l2_mean_pct"] / ref["l2_mean_pct"] - 1 if row["l2_mean_pct"] is not None else None
    # resolution transfer: the 100²-trained models (41² patches) applied to 250² / 10×10 (51²
    # patches) and to 500² / 10×10 (101² patches, 2.5 times the training resolution)
    transfer = ErrorTable("case", "method")
    for fine, coarse in TRANSFER[:1] if q else TRANSFER:
        pair_t = structured_hierarchy(coarse, fine, quadrilateral=True)
        V_t = fd.FunctionSpace(pair_t.fine, "CG", 1)
        kle_t = paper_kle((fine, fine))
        for s in tqdm(range(max(1, n_test // 4)), desc=f"resolution transfer {fine}^2", unit="sample"):
            kappa = cell_field(pair_t.fine, kle_t.sample_kappa(TEST_SEED + 2 * s))
            case, failures = f"{fine}^2/{coarse}^2 diffusion f=1", {}
            transferred = Method("GMsFEM-NO (sal), trained on 100^2", "learned",
                                 {"checkpoint": str(checkpoints["sal"]), "verify": "off"})
            spaces = build_spaces(pair_t, V_t, kappa, [methods[0], transferred], failures=failures)
            transfer.add_comparison((case,), compare_with_fine(Diffusion(V_t, kappa, 1.0), spaces))
            for label, message in failures.items():
                transfer.fail((case, label), message)
    transfer_rows = transfer.rows()
    per_solve = {OFFLINE_KEYS[label]: float(np.mean(v)) if v else None for label, v in offline.items()}
    saving = per_solve["slepc"] - per_solve["sal"] if per_solve["sal"] is not None else 0.0
    cost = timings["data_generation_s"] + timings["train_sal_s"]
    break_even = cost / saving if saving > 0 else None
    print_table(rows, [("problem", "problem", ""), ("forcing", "forcing", ""), ("method", "method", ""),
                       ("l2_mean_pct", "L2 %", ".2f"), ("h1_mean_pct", "H1 %", ".2f"),
                       ("l2_vs_slepc", "L2 vs SLEPc", "+.1%"), ("paper_no_l2_pct", "paper NO L2", ".2f")])
    print()
    print_table(transfer_rows, [("case", "transfer to", ""), ("method", "method", ""), ("l2_mean_pct", "L2 %", ".2f"),
                                ("h1_mean_pct", "H1 %", ".2f")])
    learned = "no usable space" if per_solve["sal"] is None else f"{per_solve['sal']:.3f} s"
    print(f"\nbases per solve: SLEPc {per_solve['slepc']:.3f} s, GMsFEM-NO {learned}; "
          f"data + training {cost:.0f} s; break-even after "
          f"{'never (no saving per solve)' if break_even is None else f'{break_even:.0f} solves'}")
    payload = {
        "benchmark": "gmsfem_no_accuracy", "quick": q, "wall_s": time.perf_counter() - t_start,
        "setup": {"torch_threads": 2, "fine": 100, "coarse": 5, "n_basis": 8, "train_samples": n_train,
                  "test_samples": n_test,
                  "epochs": epochs, "width": width, "depth": 4, "modes": modes, "batch_size": batch_size,
                  "lr": lr, "inner_product": args.inner_product, "architecture": args.architecture,
                  "oversample": {loss: 0 if loss == "rbfl2" else args.oversample for loss in LOSSES},
                  "seed": args.seed,
                  "test_kappa_seeds": f"{TEST_SEED} + 2s (disjoint from training)",
                  "standalone": "F-FNO kappa (+ f) -> u trained on f = 1 fine diffusion solutions"},
        "timings": timings, "offline_per_solve_s": per_solve, "break_even_solves": break_even,
        "errors": rows, "resolution_transfer": transfer_rows}
    path = write_result(args.out, payload, targets(payload))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
