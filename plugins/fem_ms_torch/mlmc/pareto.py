"""Cost/accuracy comparisons of training runs (the MLMC benchmarks and demo): one measured run,
the Pareto front, the plot."""

from __future__ import annotations

from collections import Counter

from .batcher import MultilevelBatcher
from .trainer import MLMCTrainer

__all__ = ["run_case", "pareto_front", "plot_pareto"]


def run_case(name: str, levels, test_level, make_model, counts, sizes, sampling: str, epochs: int, loss: str,
             seed: int, lr: float = 1e-3, progress: bool = True, return_trainer: bool = False, **extra):
    """Train one configuration (one level = the single-level baseline) and measure it.

    ``time_s``, the cost every comparison uses, is the process CPU time of training (all
    epochs, one torch thread, evaluation excluded): the machine is shared, and CPU time is far
    less disturbed by other processes than wall time (``train_wall_s``, also recorded).
    ``test_loss`` is the mean per-sample ``loss`` on ``test_level`` (the finest test set).
    Returns the row (and the trained :class:`MLMCTrainer` if ``return_trainer``).
    """
    import torch


    torch.manual_seed(seed)
    model = make_model()
    batcher = MultilevelBatcher(len(levels[0]), counts, sizes, sampling, seed)
    trainer = MLMCTrainer(model, levels, batcher, epochs, loss=loss, lr=lr, device="cpu", progress=progress, desc=name)
    trainer.train()
    history = trainer.history
    row = {"case": name, "levels": [level.name for level in levels], "m": len(levels), "sampling": sampling,
            "counts": list(counts), "batch_sizes": list(sizes), "epochs": epochs,
            "steps_per_epoch": history[0]["steps"],
            "time_s": trainer.train_cpu_s, "train_wall_s": trainer.train_time_s,
            "time_per_epoch_s": trainer.train_cpu_s / epochs, "wall_per_epoch_s": trainer.train_time_s / epochs,
            "level_cpu_s": [sum(r["level_cpu_s"][l] for r in history) for l in range(len(levels))],
            "final_level_loss": history[-1]["level_loss"], "train_loss_curve": [sum(r["level_loss"]) for r in history],
            "test_loss": trainer.evaluate(test_level, loss=loss), **extra}
    return (row, trainer) if return_trainer else row


def pareto_front(rows: list[dict]) -> None:
    """Mark ``pareto`` on the rows no other row beats in both training time and test loss."""
    for row in rows:
        row["pareto"] = not any(o is not row and o["time_s"] <= row["time_s"] and o["test_loss"] <= row["test_loss"]
                                and (o["time_s"] < row["time_s"] or o["test_loss"] < row["test_loss"]) for o in rows)


def plot_pareto(rows: list[dict], path, title: str, ylabel: str, ax=None) -> None:
    """Test loss against training cost: the single-level baselines as a line, MLMC runs by
    number of levels (colour) and sampling (marker), hollow where the fine levels hold fewer
    samples (``kind`` "mlmc", "mlmc-optimal"), labelled with δ; losses beyond four times the
    worst baseline are drawn at that height and labelled. Saved to ``path`` unless
    drawn into a given matplotlib ``ax``."""
    import matplotlib

    if ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5))
    single = [r for r in rows if r["kind"] == "single-level"]
    # the line joins the resolutions of the most common (batch size, epochs); runs with other
    # settings (batch-size controls) are marked apart, with their settings
    setting = Counter((r["batch_sizes"][0], r["epochs"]) for r in single).most_common(1)[0][0] if single else None

    def other_setting(r):
        return (r["batch_sizes"][0], r["epochs"]) != setting

    base = sorted((r for r in single if not other_setting(r)), key=lambda r: r["time_s"])
    ax.plot([r["time_s"] for r in base], [r["test_loss"] for r in base], "k:o", label="single level")
    for r in base:
        ax.annotate(r["levels"][-1], (r["time_s"], r["test_loss"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    controls = [r for r in single if other_setting(r)]
    for i, r in enumerate(controls):
        ax.scatter(r["time_s"], r["test_loss"], marker="o", s=40, facecolors="none", edgecolors="k",
                   label=None if i else "single level, other batch / epochs")
        ax.annotate(f"{r['levels'][-1]} B={r['batch_sizes'][0]}, {r['epochs']} ep", (r["time_s"], r["test_loss"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)
    colours = {2: "tab:blue", 3: "tab:orange", 4: "tab:green"}
    markers = {"random": "o", "nested": "s"}
    finite = [r["test_loss"] for r in rows]
    top = min(max(finite), 4 * max(r["test_loss"] for r in single)) if single else max(finite)
    seen = set()
    for r in rows:
        if r["kind"] == "single-level":
            continue
        key = (r["m"], r["sampling"], r["kind"])
        scarce = r["kind"] in ("mlmc", "mlmc-optimal")
        label = f"MLMC m={r['m']} {r['sampling']}" + {"mlmc": ", N_l = N_0 δ^-l", "mlmc-optimal": ", optimal N_l"}.get(
            r["kind"], "")
        y = min(r["test_loss"], top)
        ax.scatter(r["time_s"], y, marker="*" if r["kind"] == "mlmc-optimal" else markers[r["sampling"]],
                   s=70 if r["kind"] == "mlmc-optimal" else 32, label=None if key in seen else label,
                   facecolors="none" if scarce else colours.get(r["m"], "tab:red"),
                   edgecolors=colours.get(r["m"], "tab:red"))
        seen.add(key)
        text = f"δ={r['delta']:g}" + (f" ({r['test_loss']:.3g}, off scale)" if r["test_loss"] > top else "")
        if other_setting(r):
            text += f", B={'/'.join(map(str, r['batch_sizes']))}, {r['epochs']} ep"
        ax.annotate(text, (r["time_s"], y), textcoords="offset points", xytext=(3, -9), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training cost [CPU s, one thread, all epochs]")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if fig is not None:
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
