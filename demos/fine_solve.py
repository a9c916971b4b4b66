"""Fine-scale solves on a high-contrast Karhunen–Loève permeability (the main demo).
=================================================================================

Samples κ = exp(a·Y) in [1, 9600] from the GMsFEM-NO paper's KLE on a 100×100 grid, solves
linear diffusion and steady Richards (Haverkamp, Newton) with f = 1 on the fine Q1 mesh, and
shows why multiscale methods are needed: the same problems solved on coarser meshes of the
nested hierarchy with a geometric-mean upscaled κ are compared with the fine solution.

Run:  make demo        (or: scripts/env python demos/fine_solve.py --help)
Writes demos/output/fine_solve.png (κ, solutions, error table) and demos/output/fine_solve.vtu.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fem_ms.cli import parse_args_and_petsc_options


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="PETSc options go to PETSc: -ksp_monitor or -snes_monitor (the "
                                            "solves read options without prefix), -log_view.")
    parser.add_argument("--fine", type=int, default=100, help="fine cells per side (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="KLE sample seed")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "output")
    # PETSc reads sys.argv when Firedrake is first imported: only PETSc's options stay there
    args = parse_args_and_petsc_options(parser, argv)
    n = args.fine
    if n % 4:
        parser.error("--fine must be a multiple of 4 (coarser meshes are n/2 and n/4)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import CenteredNorm, LogNorm

    import firedrake as fd
    from firedrake.pyplot import tripcolor

    from fem_ms import Diffusion, Richards, cell_field, relative_h1_error, relative_l2_error, solve
    from fem_ms.coefficients import block_geometric_mean, paper_kle
    from fem_ms.export import write_fields
    from fem_ms.metrics import on_reference_space

    t0 = time.perf_counter()
    kle = paper_kle((n, n))
    kappa_grid = kle.sample_kappa(args.seed)
    print(f"KLE: {kle.n_modes} modes capture {100 * kle.energy_captured:.1f}% of the variance; "
          f"kappa in [{kappa_grid.min():.3g}, {kappa_grid.max():.4g}] "
          f"({time.perf_counter() - t0:.2f} s)")

    meshes, solutions = {}, {}
    for m in (n, n // 2, n // 4):
        mesh = fd.UnitSquareMesh(m, m, quadrilateral=True)
        V = fd.FunctionSpace(mesh, "CG", 1)
        kappa = cell_field(mesh, kappa_grid if m == n else block_geometric_mean(kappa_grid, n // m))
        for cls in (Diffusion, Richards):
            t = time.perf_counter()
            result = solve(cls(V, kappa, 1.0), options_prefix="")  # -ksp_*/-snes_* of the command line
            solutions[cls.name, m] = result.u
            if m == n:
                newton = f", {result.iterations} Newton iterations" if not cls.linear else ""
                print(f"{cls.name:>9} on {m}x{m} ({V.dim()} DOFs): "
                      f"{time.perf_counter() - t:.2f} s{newton}, max u = {result.u.dat.data_ro.max():.4g}")
        meshes[m] = (mesh, kappa)

    rows = []
    print(f"\nUpscaled coarse solutions against the fine {n}x{n} solution:")
    print(f"{'problem':>10} {'mesh':>8} {'rel. L2 %':>10} {'rel. H1 %':>10}")
    for name in ("diffusion", "richards"):
        for m in (n // 2, n // 4):
            ref = solutions[name, n]
            l2 = 100 * relative_l2_error(solutions[name, m], ref)
            h1 = 100 * relative_h1_error(solutions[name, m], ref)
            rows.append((name, f"{m}x{m}", f"{l2:.2f}", f"{h1:.2f}"))
            print(f"{name:>10} {m:>4}x{m:<3} {l2:>10.2f} {h1:>10.2f}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    fine_mesh, fine_kappa = meshes[n]
    png = args.out_dir / "fine_solve.png"
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5), constrained_layout=True)
    ax = axes[0, 0]
    im = ax.imshow(kappa_grid.T, origin="lower", extent=(0, 1, 0, 1), norm=LogNorm(), cmap="viridis")
    fig.colorbar(im, ax=ax, label="κ (log scale)")
    ax.set_title(f"KLE permeability, seed {args.seed}")
    for ax, key, title in ((axes[0, 1], ("diffusion", n), f"diffusion, fine {n}×{n}"),
                           (axes[0, 2], ("richards", n), f"Richards (Haverkamp), fine {n}×{n}"),
                           (axes[1, 0], ("diffusion", n // 4), f"diffusion, upscaled κ, {n // 4}×{n // 4}")):
        fig.colorbar(tripcolor(solutions[key], axes=ax, cmap="magma"), ax=ax, label="u")
        ax.set_title(title)
    diff = fd.Function(solutions["diffusion", n].function_space()).assign(
        on_reference_space(solutions["diffusion", n // 4], solutions["diffusion", n])
        - solutions["diffusion", n])
    # centred: white is no error, and equal colours are equal errors of either sign
    fig.colorbar(tripcolor(diff, axes=axes[1, 1], cmap="RdBu_r", norm=CenteredNorm()), ax=axes[1, 1], label="error")
    axes[1, 1].set_title(f"upscaled {n // 4}×{n // 4} minus fine (diffusion)")
    for ax in axes.flat[:5]:
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    axes[1, 2].axis("off")
    table = axes[1, 2].table(cellText=rows, colLabels=["problem", "coarse mesh", "rel. L2 %", "rel. H1 %"],
                             loc="center")
    table.scale(1, 1.6)
    axes[1, 2].set_title("coarse solutions vs the fine solution")
    fig.savefig(png, dpi=110)
    vtu = write_fields(args.out_dir / "fine_solve.vtu", fine_mesh, kappa=fine_kappa,
                       u_diffusion=solutions["diffusion", n], u_richards=solutions["richards", n])
    print(f"\nSaved the figure to {png}\nSaved the fields for ParaView to {vtu}")


if __name__ == "__main__":
    main()
