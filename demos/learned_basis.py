"""Learned GMsFEM bases: train small F-FNOs on SLEPc bases, then swap them in for SLEPc.
=====================================================================================

Generates a GMsFEM basis dataset (KLE κ, SLEPc eigenvectors per neighbourhood), trains one
F-FNO per neighbourhood kind with the subspace alignment loss (SAL, in the energy inner product
of the local problem; the networks predict ``--oversample`` functions more, and the provider
keeps the n_basis lowest Rayleigh–Ritz vectors of the local problem in their span), and solves
a problem on an unseen κ with ``basis="slepc"`` and ``basis="learned"`` (the network's bases as
they come, ``verify="off"``, and with the provider's default a-posteriori check, which recomputes
the neighbourhoods it flags with SLEPc): prints the error tables, the times to produce the bases
and what the check did, writes them to a JSON file, and plots true vs predicted basis functions.

A small configuration that trains in a few minutes on a CPU; it shows the mechanics, not the
accuracy of a well-trained model (see docs/gmsfem.md).

Run:  scripts/env python demos/learned_basis.py [--samples 32 --epochs 40] [--json PATH]
Writes demos/output/learned_basis.png, demos/output/learned_basis.json (the figures; docs/gmsfem.md
quotes docs/results/learned_basis.json, written by this demo with its defaults) and
demos/output/learned_basis/ (dataset, checkpoint).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fem_ms.cli import parse_args_and_petsc_options


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="PETSc options (-log_view, ...) go to PETSc.")
    parser.add_argument("--fine", type=int, default=40)
    parser.add_argument("--coarse", type=int, default=4)
    parser.add_argument("--n-basis", type=int, default=4)
    parser.add_argument("--samples", type=int, default=32, help="training κ samples")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--oversample", type=int, default=4,
                        help="functions predicted beyond n_basis, reduced by Rayleigh-Ritz (0: exactly n_basis)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "output")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures "
                        "(default OUT_DIR/learned_basis.json)")
    # PETSc reads sys.argv when Firedrake is first imported: only PETSc's options stay there
    args = parse_args_and_petsc_options(parser, argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import firedrake as fd

    from fem_ms import Diffusion, cell_field, relative_h1_error, relative_l2_error, solve, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms.gmsfem import GMsFEM
    from fem_ms_torch.basis.train import train_basis

    work = args.out_dir / "learned_basis"
    config = GMsFEMBasisConfig(name="train", samples=args.samples, fine=args.fine, coarse=args.coarse,
                               n_basis=args.n_basis, train_fraction=1.0)
    dataset = generate(config, work, overwrite=True)  # the demo's own files: other arguments replace them
    checkpoint = work / f"ffno_e{args.epochs}_w{args.width}_p{args.oversample}.pt"
    settings = dict(epochs=args.epochs, width=args.width, depth=4, modes=8, batch_size=4, lr=3e-3, loss="sal",
                    oversample=args.oversample)
    try:
        train_basis(dataset, checkpoint, **settings)  # resumes an interrupted run of the same settings
    except FileExistsError:  # written by another version or data: train afresh
        print(f"{checkpoint} was trained with other settings; training afresh")
        checkpoint.unlink()
        train_basis(dataset, checkpoint, **settings)

    pair = structured_hierarchy(args.coarse, args.fine)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa = cell_field(pair.fine, paper_kle((args.fine,) * 2).sample_kappa(10_001))  # not in the training set
    print(f"\n{'problem':>20} {'basis':>16} {'rel. L2 %':>10} {'rel. H1 %':>10} {'bases s':>9}")
    runs, figures = {}, []
    bases = (("slepc", "slepc", {"progress": False}),
             ("learned, unchecked", "learned", {"checkpoint": str(checkpoint), "verify": "off"}),
             ("learned", "learned", {"checkpoint": str(checkpoint)}))
    for f_name, f in (("f = 1", 1.0), ("f = sin(πx)cos(πy)", None)):
        if f is None:
            x, y = fd.SpatialCoordinate(pair.fine)
            f = fd.Function(V).interpolate(fd.sin(fd.pi * x) * fd.cos(fd.pi * y))
        problem = Diffusion(V, kappa, f)
        ref = solve(problem).u
        for label, basis, opts in bases:
            g = GMsFEM(problem, pair, n_basis=args.n_basis, basis=basis, provider_options=opts)
            u = g.solve().u
            runs[label] = g
            l2, h1 = 100 * relative_l2_error(u, ref), 100 * relative_h1_error(u, ref)
            report = g.space.bases.verification
            figures.append({"problem": f_name, "basis": label, "l2_pct": round(l2, 2), "h1_pct": round(h1, 2),
                            "offline_s": g.timings["offline"],
                            "recomputed_by_slepc": len(report.fallen_back) if report else None,
                            "neighbourhoods": len(g.space.neighbourhoods)})
            print(f"{f_name:>20} {label:>16} {l2:>10.2f} {h1:>10.2f} {g.timings['offline']:>9.3f}"
                  + (f"   {report.summary()}" if report and report.policy != "off" else ""))
    out = args.json or args.out_dir / "learned_basis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out_dir", "json")}
    out.write_text(json.dumps({"demo": "learned_basis", "settings": settings, "kappa_seed": 10_001,
                               "rows": figures}, indent=2) + "\n")
    print(f"\nWrote the figures to {out}")

    # true basis functions of one full neighbourhood and their best approximation in the learned span
    slepc, learned = runs["slepc"], runs["learned, unchecked"]
    i = next(n.index for n in slepc.space.neighbourhoods if n.kind == "full")
    true = slepc.space.bases.vectors[i]
    q, _ = np.linalg.qr(learned.space.bases.vectors[i])
    approx = q @ (q.T @ true)
    patches = slepc.space.patches
    shape = tuple(s + 1 for s in patches.kappa_patch(i).shape)
    pos = patches.grid_positions(i)

    def grid(values):
        out = np.zeros(shape)
        out[pos] = values
        return out.T

    fig, axes = plt.subplots(3, args.n_basis, figsize=(3.2 * args.n_basis, 9.5), constrained_layout=True)
    for j in range(args.n_basis):
        vmax = np.abs(true[:, j]).max()
        for row, (values, label) in enumerate(((true[:, j], "SLEPc φ"), (approx[:, j], "projection on learned span"),
                                               (approx[:, j] - true[:, j], "difference"))):
            ax = axes[row, j]
            im = ax.imshow(grid(values), origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(f"{label}, j = {j + 1}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=axes[:, j], shrink=0.6)
    png = args.out_dir / "learned_basis.png"
    fig.suptitle(f"neighbourhood {i} (full), unseen κ: SLEPc basis vs the learned subspace")
    fig.savefig(png, dpi=90)
    print(f"\nSaved the figure to {png}")


if __name__ == "__main__":
    main()
