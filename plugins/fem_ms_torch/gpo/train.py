"""Training of GP operators (LoGoS-GPO, plain GPO, SVGP) with resumable checkpoints, and their
evaluation: relative L2 error, 95 % interval coverage and negative log predictive density."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoints import load_checkpoint_file, save_checkpoint_file
from .baselines import ExactGPO, SVGPOperator
from .calibration import calibrate_variance
from .logos import LoGoSGPO
from .problems import GridProblem, load_problem
from .spatial import KNNKernel, KroneckerKNNKernel

__all__ = ["MODELS", "build_model", "train_gpo", "load_gpo", "evaluate", "relative_l2", "FORMAT"]

# 2: periodic WNOs take (cos, sin) coordinates (their lift has another shape than in 1)
# 3: models carry a calibrated predictive variance
FORMAT = "fem-ms/gpo/3"
MODELS = ("logos", "gpo", "svgp")
_WNO_KEYS = ("width", "depth", "level", "wavelet", "modes", "boundary")


def build_model(name: str, problem: GridProblem, options: dict | None = None) -> torch.nn.Module:
    """A model for ``problem``'s grid. ``options``: WNO settings (width, depth, level, wavelet,
    modes, boundary), latent_channels, latent_size; LoGoS: inducing, neighbours, base, taper,
    lengthscale, kronecker; GPO: neural_mean, base, lengthscale; SVGP: inducing, input_size."""
    if name not in MODELS:
        raise ValueError(f"unknown GPO model {name!r}; known: {list(MODELS)}")
    opts = dict(options or {})
    known = {"logos": {*_WNO_KEYS, "latent_channels", "latent_size", "inducing", "neighbours", "base", "taper",
                       "lengthscale", "kronecker"},
             "gpo": {*_WNO_KEYS, "latent_channels", "latent_size", "neural_mean", "base", "lengthscale"},
             "svgp": {"inducing", "input_size"}}[name]
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ValueError(f"unknown options {unknown} for model {name!r}; known: {sorted(known)}")
    C = problem.a.shape[1]
    if name == "svgp":
        return SVGPOperator(C, problem.grid, problem.output_index, problem.kernel_points, **opts)
    if name == "gpo":
        return ExactGPO(C, problem.grid, problem.output_index, problem.kernel_points, **opts)
    spatial_keys = {"neighbours": 16, "base": "rbf", "taper": True, "lengthscale": 0.05}
    spatial = {k: opts.pop(k, v) for k, v in spatial_keys.items()}
    kronecker = opts.pop("kronecker", problem.structured and len(problem.grid) > 1)
    if kronecker:
        if not problem.structured:
            raise ValueError("a Kronecker spatial kernel needs outputs on the whole tensor grid")
        per_axis = max(1, round(spatial["neighbours"] ** (1 / len(problem.grid))))
        axes = [problem.axis_kernel_points(k) for k in range(len(problem.grid))]
        kx = KroneckerKNNKernel(axes, per_axis, spatial["base"], spatial["taper"], spatial["lengthscale"])
    else:
        kx = KNNKernel(problem.kernel_points, spatial["neighbours"], spatial["base"], spatial["taper"],
                       spatial["lengthscale"])
    return LoGoSGPO(C, problem.grid, problem.output_index, kx, **opts)


def _save(path: Path, payload: dict) -> None:
    save_checkpoint_file(path, payload, FORMAT)


def _load(path: Path) -> dict:
    return load_checkpoint_file(path, FORMAT, "a GPO")


def train_gpo(dataset, out, model: str = "logos", epochs: int = 100, batch_size: int = 16, lr: float = 4e-3,
              seed: int = 0, level: int | None = None, stride: int = 1, n_train: int | None = None,
              options: dict | None = None, variational: str = "closed-form", mean_epochs: int = 0,
              max_seconds: float | None = None, progress: bool = True, refresh_every: int = 1,
              noise_every: int = 1, calibration: int = 0) -> Path:
    """Train a GP operator on the ``train`` split of ``dataset``; checkpoint after every epoch.

    AdamW with a cosine schedule on the negative ELBO (LoGoS, SVGP; mini-batches of whole
    functions) or the negative exact log marginal likelihood (GPO; one full-batch step per
    epoch). Rerunning with the same arguments continues from the last checkpoint and ends with
    the same weights as an uninterrupted run; a checkpoint written with other arguments is
    refused. ``max_seconds`` stops after the epoch that passes it (the run can be resumed).

    LoGoS-GPO's variational parameters (B, S) are, with ``variational="closed-form"``
    (default), set, with the noise, to their optimum for the current kernels and mean before
    the first whole-model epoch and after every epoch (:meth:`LoGoSGPO.optimal_variational`),
    and AdamW trains the rest; ``"gradient"`` trains them with AdamW too. With
    ``refresh_every=k`` ≥ 1, (B, S) are also set to their optimum (noise held) before every
    k-th mini-batch step. With k = 1 every step's mini-batch ELBO gradient, taken at the
    optimal (B, S), is an unbiased estimate of the gradient of the collapsed bound (the ELBO
    maximised over B, S; envelope theorem), which is what the kernels and the mean should
    climb. A stale (B, S) adds a pull back towards the old kernels: on Burgers k = 1 was clearly
    more accurate than k = 2 or epoch ends only (docs/gpo.md). Each update passes all N training
    inputs through both WNOs, so k = 1 costs several plain steps; ``0`` updates at epoch ends
    only. With ``batch_size`` ≥ N each epoch is one step with the exact gradient of the collapsed
    bound, which on Burgers beat mini-batches by an order of magnitude (docs/gpo.md). The
    epoch-end update also re-fits the noise σ² (a bounded search over the collapsed bound, one
    sparse solve per inducing point and trial σ²); ``noise_every=k`` does that at every k-th
    epoch end and the last, and holds σ² in between (with full batches on Burgers the search was
    most of each step's time at k = 1).

    ``mean_epochs`` > 0 first fits the neural mean m(a) alone (LoGoS, GPO) to the training
    outputs for that many epochs (mean squared error, mini-batches, its own AdamW + cosine
    schedule), then trains the whole model for ``epochs``. Trained jointly from the start, the
    closed-form (B, S) explains the training data with the M × d coefficients B before the
    mean has learnt anything, and the mean WNO receives almost no signal (LoGoS on Burgers: the
    mean alone left most of the output variance unexplained; docs/gpo.md).

    ``calibration`` > 0 holds out the ``calibration`` functions of the train split that follow
    the ``n_train`` training ones and, when training stops, fits the predictive variance
    s·v + σ² (a scale of the latent variance v and the noise) to them by maximum likelihood
    (:func:`~.calibration.calibrate_variance`; the posterior mean is kept). Without it the
    intervals are the trained model's, whose noise a variational bound overestimates.
    """
    dataset, out = Path(dataset), Path(out)
    counts = (("epochs", epochs, 1), ("mean_epochs", mean_epochs, 0), ("refresh_every", refresh_every, 0),
              ("noise_every", noise_every, 1), ("calibration", calibration, 0))
    for name, value, low in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "positive" if low else "non-negative"
            raise ValueError(f"train_gpo: {name} must be a {kind} integer, got {value!r}")
    if variational not in ("closed-form", "gradient"):
        raise ValueError(f"train_gpo: variational must be 'closed-form' or 'gradient', got {variational!r}")
    settings = dict(dataset=str(dataset.resolve()), model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                    seed=seed, level=level, stride=stride, n_train=n_train, options=dict(options or {}),
                    mean_epochs=mean_epochs, calibration=calibration)
    closed_form = model == "logos" and variational == "closed-form"
    if model == "logos":
        settings.update(variational=variational, refresh_every=refresh_every, noise_every=noise_every)
    problem = load_problem(dataset, "train", level=level, stride=stride, limit=n_train)
    held_out = _held_out(dataset, problem, level, stride, n_train, calibration) if calibration else None
    torch.manual_seed(seed)
    net = build_model(model, problem, options)
    if closed_form:  # set by LoGoSGPO.optimal_variational, not by AdamW
        for p in net.closed_form_parameters():
            p.requires_grad_(False)
    if mean_epochs and getattr(net, "mean_op", None) is None:  # SVGP, or a GPO with neural_mean=False
        raise ValueError(f"train_gpo: mean_epochs needs a neural mean; this {model!r} model has none")
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    mean_optimizer = torch.optim.AdamW(net.mean_op.parameters(), lr=lr, weight_decay=0.0) if mean_epochs else None
    mean_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(mean_optimizer, T_max=mean_epochs) \
        if mean_epochs else None
    state = {"settings": settings, "done": 0, "seconds": 0.0, "losses": [],
             "normalisation": problem.normalisation}
    if out.exists():
        previous = _load(out)
        if previous.get("settings") != settings:
            raise FileExistsError(f"{out} was trained with other settings; remove it or choose another path")
        state = previous
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if mean_epochs:
            mean_optimizer.load_state_dict(state["mean_optimizer"])
            mean_scheduler.load_state_dict(state["mean_scheduler"])
    else:
        generator = torch.Generator().manual_seed(seed)
        if model == "logos":
            net.init_inducing(problem.a[torch.randperm(len(problem.a), generator=generator)[:256]])
        elif model == "svgp":
            net.init_inducing(problem.a[:64], generator)
    if model == "gpo":
        net.set_train_data(problem.a, problem.y)
    N = len(problem.a)
    bar = tqdm(range(state["done"], mean_epochs + epochs), desc=f"{model} on {dataset.name}", unit="epoch",
               disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        net.train()
        fit_mean = epoch < mean_epochs
        if closed_form and epoch == mean_epochs:  # before the first whole-model epoch
            net.optimal_variational(problem.a, problem.y, noise=True)
        batches = [None] if net.full_batch and not fit_mean else \
            torch.randperm(N, generator=torch.Generator().manual_seed(seed + epoch)).split(batch_size)
        opt, sched = (mean_optimizer, mean_scheduler) if fit_mean else (optimizer, scheduler)
        total = 0.0
        for step, idx in enumerate(batches):
            if closed_form and not fit_mean and refresh_every and step and step % refresh_every == 0:
                net.optimal_variational(problem.a, problem.y)
            if fit_mean:
                value = (net.prior_mean(problem.a[idx]) - problem.y[idx]).square().mean()
            else:
                value = net.loss() if idx is None else net.loss(problem.a[idx], problem.y[idx], N)
            opt.zero_grad()
            value.backward()
            opt.step()
            total += float(value.detach())
        sched.step()
        if closed_form and not fit_mean:
            whole_epoch = epoch + 1 - mean_epochs
            last = epoch + 1 == mean_epochs + epochs
            net.optimal_variational(problem.a, problem.y, noise=last or whole_epoch % noise_every == 0)
        state["losses"].append(total / len(batches))
        state["seconds"] += time.perf_counter() - start
        state["done"] = epoch + 1
        state.update(state_dict=net.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict())
        if mean_epochs:
            state.update(mean_optimizer=mean_optimizer.state_dict(), mean_scheduler=mean_scheduler.state_dict())
        _save(out, state)
        bar.set_postfix(loss=f"{state['losses'][-1]:.4g}")
        if max_seconds is not None and state["seconds"] > max_seconds:
            break
    if held_out is not None:
        calibrate_variance(net, held_out.a, held_out.y)
        state["state_dict"] = net.state_dict()
        _save(out, state)
    return out


def _held_out(dataset: Path, problem: GridProblem, level, stride: int, n_train, calibration: int) -> GridProblem:
    """The ``calibration`` train-split functions after the first ``n_train``, standardised as ``problem``."""
    if n_train is None:
        raise ValueError("train_gpo: calibration holds out train-split functions after the first n_train; "
                         "set n_train")
    both = load_problem(dataset, "train", level=level, stride=stride, limit=n_train + calibration,
                        normalisation=problem.normalisation)
    if len(both.a) < n_train + calibration:
        raise ValueError(f"train_gpo: n_train + calibration = {n_train + calibration} functions, but the train "
                         f"split of {dataset} has {len(both.a)}")
    both.a, both.y = both.a[n_train:], both.y[n_train:]
    return both


def load_gpo(path):
    """(model, settings, state) from a checkpoint, the model in eval mode (a GPO with its
    training data). Test data: ``load_problem(..., normalisation=state["normalisation"])``."""
    state = _load(Path(path))
    s = state["settings"]
    problem = load_problem(s["dataset"], "train", level=s["level"], stride=s["stride"], limit=s["n_train"])
    net = build_model(s["model"], problem, s["options"])
    if s["model"] == "gpo":
        net.set_train_data(problem.a, problem.y)
    net.load_state_dict(state["state_dict"])
    return net.eval(), s, state


def relative_l2(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """‖prediction − truth‖ / ‖truth‖ per function, (batch,), from (batch, d) point values."""
    return (prediction - truth).norm(dim=1) / truth.norm(dim=1)


@torch.no_grad()
def evaluate(net, problem: GridProblem, batch_size: int = 25) -> dict:
    """Test figures in the data's own units: relative L2 error per function (mean, std), the
    fraction of points inside the central 95 % predictive interval, and the negative log
    predictive density per point."""
    net.eval()
    rel, inside, nlpd = [], 0, 0.0
    for idx in torch.arange(len(problem.a)).split(batch_size):
        pred = net.predict(problem.a[idx])
        y = problem.raw_outputs(problem.y[idx])
        mean = problem.raw_outputs(pred.mean)
        std = pred.std * problem.y_std
        rel.append(relative_l2(mean, y).numpy())
        z = (y - mean) / std
        inside += int((z.abs() <= 1.959964).sum())
        nlpd += float((0.5 * z**2 + torch.log(std) + 0.5 * math.log(2 * math.pi)).sum())
    rel = np.concatenate(rel)
    n = problem.y.numel()
    return {"rel_l2_mean": float(rel.mean()), "rel_l2_std": float(rel.std()), "coverage_95": inside / n,
            "nlpd": nlpd / n, "test_functions": len(rel)}
