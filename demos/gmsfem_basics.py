"""GMsFEM basics: SLEPc spectral bases on a high-contrast KLE field, errors as N_bf grows.
=======================================================================================

Solves −∇·(κ∇u) = 1 on a 100×100 Q1 mesh with a 5×5 coarse grid (36 neighbourhoods), builds
the multiscale space from the N_bf smallest eigenpairs of A_i φ = λ S_i φ in every neighbourhood
(SLEPc), and compares the multiscale solution u = Rᵀu₀ with the fine solution.

Run:  scripts/env python demos/gmsfem_basics.py [--fine 100 --coarse 5 --seed 0]
Writes demos/output/gmsfem_basics.png (κ, basis functions, solutions, error table).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fem_ms.cli import parse_args_and_petsc_options

N_BASIS = (1, 2, 4, 8, 12)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="PETSc options go to PETSc: -ksp_monitor (the fine solve), "
                                            "-gmsfem_eps_view (the local eigensolves), -gmsfem_coarse_ksp_view "
                                            "(the coarse solves), -log_view.")
    parser.add_argument("--fine", type=int, default=100, help="fine cells per side")
    parser.add_argument("--coarse", type=int, default=5, help="coarse cells per side")
    parser.add_argument("--seed", type=int, default=0, help="KLE sample seed")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "output")
    # PETSc reads sys.argv when Firedrake is first imported: only PETSc's options stay there
    args = parse_args_and_petsc_options(parser, argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import CenteredNorm, LogNorm

    import firedrake as fd
    from firedrake.pyplot import tripcolor

    from fem_ms import Diffusion, cell_field, relative_h1_error, relative_l2_error, solve, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms.gmsfem import MultiscaleSpace

    n, nc = args.fine, args.coarse
    pair = structured_hierarchy(nc, n, quadrilateral=True)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    kappa_grid = paper_kle((n, n)).sample_kappa(args.seed)
    kappa = cell_field(pair.fine, kappa_grid)
    problem = Diffusion(V, kappa, 1.0)
    fine = solve(problem, options_prefix="").u  # -ksp_*/-pc_* of the command line

    rows, solutions = [], {}
    print(f"GMsFEM on {n}x{n} fine / {nc}x{nc} coarse ({(nc + 1) ** 2} neighbourhoods), "
          f"kappa in [{kappa_grid.min():.3g}, {kappa_grid.max():.4g}]")
    print(f"{'N_bf':>5} {'coarse DOFs':>12} {'rel. L2 %':>10} {'rel. H1 %':>10} {'offline s':>10} {'online s':>9}")
    for n_basis in N_BASIS:
        # the offline stage: one multiscale space per N_bf (it would serve any other load too)
        space = MultiscaleSpace.for_problem(problem, pair, n_basis, basis="slepc", provider_options={"progress": False})
        result = space.reduce(problem).solve()
        u = result.u
        l2, h1 = 100 * relative_l2_error(u, fine), 100 * relative_h1_error(u, fine)
        rows.append((n_basis, space.dimension, l2, h1))
        solutions[n_basis] = (space, u)
        print(f"{n_basis:>5} {space.dimension:>12} {l2:>10.2f} {h1:>10.2f} {space.timings['offline']:>10.3f} "
              f"{result.timings['online']:>9.3f}")

    g, u_ms = solutions[8]
    # the interior neighbourhood closest to the centre, its first four ψ_j = χ_i φ_j
    centre = min(g.neighbourhoods, key=lambda nb: np.linalg.norm(nb.vertex - 0.5))
    psis = [g.basis_function(centre.index, j) for j in range(4)]

    args.out_dir.mkdir(parents=True, exist_ok=True)
    png = args.out_dir / "gmsfem_basics.png"
    fig, axes = plt.subplots(3, 4, figsize=(17, 12.5), constrained_layout=True)
    im = axes[0, 0].imshow(kappa_grid.T, origin="lower", extent=(0, 1, 0, 1), norm=LogNorm())
    fig.colorbar(im, ax=axes[0, 0], label="κ")
    axes[0, 0].set_title(f"KLE permeability (seed {args.seed})")
    for k in range(nc + 1):
        for ax in (axes[0, 0],):
            ax.axhline(k / nc, color="w", lw=0.5)
            ax.axvline(k / nc, color="w", lw=0.5)
    for ax, f, title in ((axes[0, 1], fine, f"fine solution ({V.dim()} DOFs)"),
                         (axes[0, 2], u_ms, f"GMsFEM, N_bf = 8 ({g.dimension} DOFs)")):
        fig.colorbar(tripcolor(f, axes=ax, cmap="magma"), ax=ax)
        ax.set_title(title)
    err = fd.Function(V).assign(u_ms - fine)
    # diverging maps centred at zero: white is zero, equal colours equal magnitudes of either sign
    fig.colorbar(tripcolor(err, axes=axes[0, 3], cmap="RdBu_r", norm=CenteredNorm()), ax=axes[0, 3])
    axes[0, 3].set_title("GMsFEM − fine")
    lam = g.bases.eigenvalues.get(centre.index)
    for j, (ax, psi) in enumerate(zip(axes[1], psis)):
        fig.colorbar(tripcolor(psi, axes=ax, cmap="coolwarm", norm=CenteredNorm()), ax=ax)
        where = ", ".join(f"{c:.2f}" for c in centre.vertex)
        title = f"ψ_{j + 1} = χ_i φ_{j + 1},  x_i = ({where})"
        ax.set_title(title + (f"\nλ = {lam[j]:.3g}" if lam is not None else ""))
    for ax in axes[:2].flat:
        ax.set_aspect("equal")
    nb, _, l2, h1 = np.array(rows).T
    axes[2, 0].semilogy(nb, l2, "o-", label="relative L2 %")
    axes[2, 0].semilogy(nb, h1, "s-", label="relative H1 %")
    axes[2, 0].set_xlabel("N_bf (basis functions per neighbourhood)")
    axes[2, 0].set_ylabel("error %")
    axes[2, 0].legend()
    axes[2, 0].grid(True, which="both", alpha=0.3)
    axes[2, 0].set_title("GMsFEM error vs N_bf")
    if lam is not None:
        all_lam = g.bases.eigenvalues
        for i in list(all_lam)[:: max(1, len(all_lam) // 6)]:
            axes[2, 1].semilogy(range(2, g.n_basis + 1), all_lam[i][1:], ".-",
                                label=f"ω_{i} ({g.neighbourhoods[i].kind})")
        axes[2, 1].set_xlabel("j")
        axes[2, 1].set_ylabel("λ_j")
        axes[2, 1].set_title("local eigenvalues (λ_1 = 0 not shown)")
        axes[2, 1].legend(fontsize=7)
    for ax in axes[2, 2:]:
        ax.axis("off")
    table = axes[2, 2].table(cellText=[[int(a), int(b), f"{c:.2f}", f"{d:.2f}"] for a, b, c, d in rows],
                             colLabels=["N_bf", "coarse DOFs", "L2 %", "H1 %"], loc="center")
    table.scale(1.3, 1.6)
    fig.savefig(png, dpi=100)
    print(f"\nSaved the figure to {png}")


if __name__ == "__main__":
    main()
