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
to run in about 47 minutes on this 2-core CPU (192 training κ, 20 epochs of batches of 4 at
lr 3·10⁻³, width 16, 8 modes); ``--quick`` is a smoke-size run (same schema). A full-size configuration for a GPU:
``--train-samples 1000 --epochs 100 --width 32 --modes 16``.

    scripts/env python -m benchmarks.gmsfem_no_accuracy [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .common import RESULTS, print_table, write_json

PAPER_NO = {("diffusion", "f=1"): (1.06, 11.57), ("diffusion", "random f"): (2.81, 19.03),
            ("richards", "f=1"): (1.87, 11.25), ("richards", "random f"): (2.99, 19.60)}
LOSSES = ("sal", "sal-pr", "rbfl2")
TEST_SEED = 100_000
OVERSAMPLE = 8


def main(argv=None) -> None:
    from fem_ms_torch.basis.train import INNER_PRODUCTS
    from fem_ms_torch.registry import available_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
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
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    del sys.argv[1:]  # PETSc reads sys.argv when Firedrake is first imported
    q = args.quick
    n_train = args.train_samples or (8 if q else 192)
    n_test = args.test_samples or (3 if q else 10)
    epochs = args.epochs or (3 if q else 20)
    width = args.width or (8 if q else 16)
    modes = args.modes or (6 if q else 8)
    batch_size = args.batch_size or 4
    lr = args.lr or 3e-3

    import firedrake as fd
    import torch

    torch.set_num_threads(2)  # training has the machine to itself (OMP_NUM_THREADS=1 is for MPI runs)

    from fem_ms import Diffusion, Richards, cell_field, solve, structured_hierarchy, vertex_field
    from fem_ms.coefficients import paper_forcing, paper_kle
    from fem_ms.data import GMsFEMBasisConfig, MultilevelConfig, generate
    from fem_ms.gmsfem import GMsFEM
    from fem_ms.metrics import relative_h1_error, relative_l2_error
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.standalone import StandaloneSolver, train_standalone

    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fem-ms-no-"))
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
    errors: dict = {}
    solve_times = {"slepc": [], **{loss: [] for loss in LOSSES}, "sal, bfloat16": []}
    for s in tqdm(range(n_test), desc="test samples", unit="sample"):
        kappa_grid = kle.sample_kappa(TEST_SEED + 2 * s)
        kappa = cell_field(pair.fine, kappa_grid)
        f_grid = forcing.sample(TEST_SEED + 2 * s + 1)
        for f_name, f, f_vertices in (("f=1", 1.0, np.ones((101, 101))),
                                      ("random f", vertex_field(V, f_grid), f_grid)):
            for cls in (Diffusion, Richards):
                problem = cls(V, kappa, f)
                ref = solve(problem).u
                methods = [("GMsFEM (SLEPc)", "slepc", {"progress": False})]
                methods += [(f"GMsFEM-NO ({loss})", "learned", {"checkpoint": str(checkpoints[loss])})
                            for loss in LOSSES]
                methods += [("GMsFEM-NO (sal, bfloat16)", "learned",  # the same model, bfloat16 products
                             {"checkpoint": str(checkpoints["sal"]), "precision": "bfloat16"})]
                for label, basis, opts in methods:
                    g = GMsFEM(problem, pair, n_basis=8, basis=basis, provider_options=opts)
                    u = g.solve().u
                    key = "slepc" if basis == "slepc" else label[11:-1]
                    solve_times[key].append(g.timings["offline"])
                    errors.setdefault((cls.name, f_name, label), []).append(
                        (relative_l2_error(u, ref), relative_h1_error(u, ref)))
                if cls is Diffusion:
                    pred = standalone(kappa_grid, f_vertices).double().numpy()
                    u = vertex_field(V, pred)
                    errors.setdefault((cls.name, f_name, "standalone F-FNO"), []).append(
                        (relative_l2_error(u, ref), relative_h1_error(u, ref)))
    rows = []
    for (problem, f_name, method), e in errors.items():
        e = 100 * np.array(e)
        paper = PAPER_NO.get((problem, f_name)) if method.startswith("GMsFEM-NO") else None
        rows.append({"problem": problem, "forcing": f_name, "method": method, "samples": n_test,
                     "l2_mean_pct": e[:, 0].mean(), "h1_mean_pct": e[:, 1].mean(),
                     "paper_no_l2_pct": paper[0] if paper else None, "paper_no_h1_pct": paper[1] if paper else None})
    for row in rows:  # relative gap to GMsFEM (SLEPc) in the same cell; target: within 5 %
        ref = next(r for r in rows if r["problem"] == row["problem"] and r["forcing"] == row["forcing"]
                   and r["method"] == "GMsFEM (SLEPc)")
        row["l2_vs_slepc"] = row["l2_mean_pct"] / ref["l2_mean_pct"] - 1
    # resolution transfer: the 100²-trained models (41² patches) applied to 250² / 10×10 (51²
    # patches) and to 500² / 10×10 (101² patches, 2.5 times the training resolution)
    transfer = []
    for fine, coarse in ((250, 10), (500, 10)):
        pair_t = structured_hierarchy(coarse, fine, quadrilateral=True)
        V_t = fd.FunctionSpace(pair_t.fine, "CG", 1)
        kle_t = paper_kle((fine, fine))
        for s in tqdm(range(max(1, n_test // 4)), desc=f"resolution transfer {fine}^2", unit="sample"):
            problem = Diffusion(V_t, cell_field(pair_t.fine, kle_t.sample_kappa(TEST_SEED + 2 * s)), 1.0)
            ref = solve(problem).u
            for label, basis, opts in (("GMsFEM (SLEPc)", "slepc", {"progress": False}),
                                       ("GMsFEM-NO (sal), trained on 100^2", "learned",
                                        {"checkpoint": str(checkpoints["sal"])})):
                u = GMsFEM(problem, pair_t, n_basis=8, basis=basis, provider_options=opts).solve().u
                transfer.append({"case": f"{fine}^2/{coarse}^2 diffusion f=1", "method": label, "sample": s,
                                 "l2_pct": 100 * relative_l2_error(u, ref), "h1_pct": 100 * relative_h1_error(u, ref)})
    transfer_rows = [{"case": c, "method": m,
                      "l2_mean_pct": float(np.mean([t["l2_pct"] for t in transfer if (t["case"], t["method"]) == (c, m)])),
                      "h1_mean_pct": float(np.mean([t["h1_pct"] for t in transfer if (t["case"], t["method"]) == (c, m)]))}
                     for c, m in dict.fromkeys((t["case"], t["method"]) for t in transfer)]
    per_solve = {k: float(np.mean(v)) for k, v in solve_times.items()}
    saving = per_solve["slepc"] - per_solve["sal"]
    cost = timings["data_generation_s"] + timings["train_sal_s"]
    break_even = cost / saving if saving > 0 else None
    print_table(rows, [("problem", "problem", ""), ("forcing", "forcing", ""), ("method", "method", ""),
                       ("l2_mean_pct", "L2 %", ".2f"), ("h1_mean_pct", "H1 %", ".2f"),
                       ("l2_vs_slepc", "L2 vs SLEPc", "+.1%"), ("paper_no_l2_pct", "paper NO L2", ".2f")])
    print()
    print_table(transfer_rows, [("case", "transfer to", ""), ("method", "method", ""), ("l2_mean_pct", "L2 %", ".2f"),
                                ("h1_mean_pct", "H1 %", ".2f")])
    print(f"\nbases per solve: SLEPc {per_solve['slepc']:.3f} s, GMsFEM-NO {per_solve['sal']:.3f} s; "
          f"data + training {cost:.0f} s; break-even after "
          f"{'never (no saving per solve)' if break_even is None else f'{break_even:.0f} solves'}")
    out = args.out or RESULTS / ("gmsfem_no_accuracy_quick.json" if q else "gmsfem_no_accuracy.json")
    path = write_json(out, {
        "benchmark": "gmsfem_no_accuracy", "quick": q, "wall_s": time.perf_counter() - t_start,
        "setup": {"torch_threads": 2, "fine": 100, "coarse": 5, "n_basis": 8, "train_samples": n_train, "test_samples": n_test,
                  "epochs": epochs, "width": width, "depth": 4, "modes": modes, "batch_size": batch_size,
                  "lr": lr, "inner_product": args.inner_product, "architecture": args.architecture,
                  "oversample": {loss: 0 if loss == "rbfl2" else args.oversample for loss in LOSSES},
                  "seed": args.seed,
                  "test_kappa_seeds": f"{TEST_SEED} + 2s (disjoint from training)",
                  "standalone": "F-FNO kappa (+ f) -> u trained on f = 1 fine diffusion solutions"},
        "timings": timings, "offline_per_solve_s": per_solve, "break_even_solves": break_even,
        "errors": rows, "resolution_transfer": transfer_rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
