"""Training of GP operators (LoGoS-GPO, plain GPO, SVGP) on the plugin's training core, and
their evaluation: relative L2 error, 95 % interval coverage and negative log predictive density."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from fem_ms.typed_config import keyword_signature

from ..checkpoints import Checkpoint, load_checkpoint, stored_model, stored_normaliser
from ..registry import register_model, with_record
from ..training import Trainer, check_validation_split
from .baselines import ExactGPO, SVGPOperator
from .calibration import calibrate_variance
from .config import MODELS, TrainGPOConfig
from .logos import LoGoSGPO
from .problems import GridProblem, load_problem
from .spatial import KNNKernel, KroneckerKNNKernel

__all__ = ["MODELS", "build_model", "train_gpo", "train_gpo_from_config", "load_gpo", "evaluate", "relative_l2",
           "GPOTrainer"]

_WNO_KEYS = ("width", "depth", "wavelet_levels", "wavelet", "modes", "boundary")


def build_model(name: str, problem: GridProblem, options: dict | None = None) -> torch.nn.Module:
    """A model for ``problem``'s grid. ``options``: WNO settings (width, depth, wavelet_levels, wavelet,
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


def _build(name: str, problem: GridProblem, options: dict | None) -> torch.nn.Module:
    """:func:`build_model`, and the exact GPO given its training data (part of the model)."""
    net = build_model(name, problem, options)
    if name == "gpo":
        net.set_train_data(problem.a, problem.y)
    return net


def _registered_builder(name: str):
    """The registry's builder of model ``name``: its training problem read from the dataset."""
    def build(dataset, resolution=None, stride=1, limit=None, options=None) -> torch.nn.Module:
        return _build(name, load_problem(dataset, "train", resolution=resolution, stride=stride, limit=limit), options)

    build.__name__ = f"build_{name}"
    return build


for _name in MODELS:
    register_model(_name, _registered_builder(_name))


def train_gpo(dataset, out, **settings) -> Path:
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
    return _train(TrainGPOConfig(dataset=dataset, out=out, **settings))


train_gpo.__signature__ = keyword_signature(TrainGPOConfig, positional=("dataset", "out"))


def train_gpo_from_config(source) -> Path:
    """``fem-ms train-gpo CONFIG``: the training a TOML/JSON file (or a mapping) describes.

    Returns the checkpoint's path.
    """
    return _train(TrainGPOConfig.load(source))


class GPOTrainer(Trainer):
    """A GP operator's epochs: an optional mean-fitting phase with its own AdamW and cosine
    schedule, then the whole model on its negative ELBO or log marginal likelihood, with
    LoGoS-GPO's closed-form (B, S) and noise updates before, during and after its epochs."""

    def __init__(self, net: torch.nn.Module, problem: GridProblem, config: TrainGPOConfig,
                 held_out: GridProblem | None = None, validation_problem: GridProblem | None = None, **kwargs):
        self.config, self.problem, self.held_out = config, problem, held_out
        self.validation_problem = validation_problem
        self.closed_form = config.model == "logos" and config.variational == "closed-form"
        if self.closed_form:  # set by LoGoSGPO.optimal_variational, not by AdamW
            for p in net.closed_form_parameters():
                p.requires_grad_(False)
        if config.mean_epochs and getattr(net, "mean_op", None) is None:  # SVGP, or a GPO without neural mean
            raise ValueError(f"train_gpo: mean_epochs needs a neural mean; this {config.model!r} model has none")
        super().__init__(net, epochs=config.mean_epochs + config.epochs, schedule_length=config.epochs, lr=config.lr,
                         weight_decay=0.0, normaliser=problem.normalisation, max_seconds=config.max_seconds,
                         validation=None if validation_problem is None else self._validation_figures,
                         validate_every=config.validate_every, device=config.device, progress=config.progress,
                         desc=f"{config.model} on {Path(config.dataset).name}", **kwargs)
        self.problem.a, self.problem.y = problem.a.to(self.device), problem.y.to(self.device)
        if config.model == "gpo":
            self.model.set_train_data(self.problem.a, self.problem.y)
        self.mean_optimizer = self.mean_scheduler = None
        if config.mean_epochs:
            self.mean_optimizer = torch.optim.AdamW(self.model.mean_op.parameters(), lr=config.lr, weight_decay=0.0)
            self.mean_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.mean_optimizer,
                                                                             T_max=config.mean_epochs)

    @property
    def fitting_mean(self) -> bool:
        """Whether this epoch fits the WNO mean alone (the first ``mean_epochs`` epochs)."""
        return self.epoch < self.config.mean_epochs

    def stateful(self) -> dict:
        state = super().stateful()
        if self.mean_optimizer is not None:
            state.update(mean_optimizer=self.mean_optimizer, mean_scheduler=self.mean_scheduler)
        return state

    def active_optimizer(self) -> torch.optim.Optimizer:
        return self.mean_optimizer if self.fitting_mean else self.optimizer

    def on_train_start(self, resumed: bool) -> None:
        if resumed:
            return
        generator = torch.Generator().manual_seed(self.config.seed)
        a = self.problem.a
        if self.config.model == "logos":
            self.model.init_inducing(a[torch.randperm(len(a), generator=generator)[:256].to(a.device)])
        elif self.config.model == "svgp":
            self.model.init_inducing(a[:64], generator)

    def _closed_form_step(self, noise: bool = False) -> None:
        elbo = self.model.optimal_variational(self.problem.a, self.problem.y, noise=noise)
        self.check_finite(elbo, what="the collapsed ELBO of the closed-form (B, S) step")

    def on_epoch_start(self) -> None:
        if self.closed_form and self.epoch == self.config.mean_epochs:  # before the first whole-model epoch
            self._closed_form_step(noise=True)

    def batches(self, epoch: int):
        if self.model.full_batch and not self.fitting_mean:
            return [None]
        generator = torch.Generator().manual_seed(self.config.seed + epoch)
        return torch.randperm(len(self.problem.a), generator=generator).split(self.config.batch_size)

    def compute_loss(self, idx) -> tuple[torch.Tensor, float]:
        a, y, n = self.problem.a, self.problem.y, len(self.problem.a)
        if self.closed_form and not self.fitting_mean and self.config.refresh_every and self.step \
                and self.step % self.config.refresh_every == 0:
            self.model.optimal_variational(a, y)
        if self.fitting_mean:
            idx = idx.to(a.device)
            return (self.model.prior_mean(a[idx]) - y[idx]).square().mean(), 1
        if idx is None:
            return self.model.loss(), 1
        idx = idx.to(a.device)
        return self.model.loss(a[idx], y[idx], n), 1

    def end_epoch(self) -> None:
        if self.fitting_mean:
            self.mean_scheduler.step()
            return
        self.scheduler.step()
        if self.closed_form:
            whole_epoch = self.epoch + 1 - self.config.mean_epochs
            last = self.epoch + 1 == self.epochs
            self._closed_form_step(noise=last or whole_epoch % self.config.noise_every == 0)

    def on_train_end(self) -> None:
        if self.held_out is not None:
            calibrate_variance(self.model, self.held_out.a.to(self.device), self.held_out.y.to(self.device))
            self.save()

    def _validation_figures(self, model) -> dict:
        figures = evaluate(model, self.validation_problem)
        return {"rel_l2": figures["rel_l2_mean"], "coverage_95": figures["coverage_95"], "nlpd": figures["nlpd"]}


def _train(config: TrainGPOConfig) -> Path:
    dataset, out = Path(config.dataset), Path(config.out)
    checkpoint = Checkpoint(out, "gpo", config.identity())
    problem = load_problem(dataset, "train", resolution=config.resolution, stride=config.stride, limit=config.n_train)
    held_out = _held_out(dataset, problem, config.resolution, config.stride, config.n_train, config.calibration) \
        if config.calibration else None
    validation = None
    if config.validation_split is not None:
        validation = load_problem(dataset, config.validation_split, resolution=config.resolution, stride=config.stride,
                                  normalisation=problem.normalisation)
        check_validation_split(len(validation.a), dataset, config.validation_split)
    torch.manual_seed(config.seed)
    net = with_record(build_model(config.model, problem, config.options), config.model, dataset=str(dataset.resolve()),
                      resolution=config.resolution, stride=config.stride, limit=config.n_train,
                      options=dict(config.options))
    GPOTrainer(net, problem, config, held_out, validation, checkpoint=checkpoint).train()
    return out


def _held_out(dataset: Path, problem: GridProblem, resolution, stride: int, n_train, calibration: int) -> GridProblem:
    """The ``calibration`` train-split functions after the first ``n_train``, standardised as ``problem``."""
    both = load_problem(dataset, "train", resolution=resolution, stride=stride, limit=n_train + calibration,
                        normalisation=problem.normalisation)
    if len(both.a) < n_train + calibration:
        raise ValueError(f"train_gpo: n_train + calibration = {n_train + calibration} functions, but the train "
                         f"split of {dataset} has {len(both.a)}")
    both.a, both.y = both.a[n_train:], both.y[n_train:]
    return both


def load_gpo(path, device: str | torch.device = "cpu"):
    """(model, settings, state) from a :func:`train_gpo` checkpoint: the model in eval mode (a
    GPO with its training data), the run's settings (its config without runtime options), and
    ``state`` with the ``normalisation`` (a :class:`~fem_ms_torch.normalisation.Normaliser`),
    ``done`` (epochs), ``seconds`` (training time), ``losses`` and ``history`` (per epoch).
    Test data: ``load_problem(..., normalisation=state["normalisation"])``."""
    stored = load_checkpoint(path)
    if stored["trainer"] != "gpo":
        raise ValueError(f"{path} holds a {stored['trainer']!r} model, not a GP operator (train_gpo)")
    net = stored_model(stored, path, device=device)
    history = stored["runs"]["model"]["history"]
    state = {"normalisation": stored_normaliser(stored, path), "done": len(history),
             "seconds": sum(r["time_s"] for r in history), "losses": [r["loss"] for r in history], "history": history}
    return net, stored["config"], state


def relative_l2(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """‖prediction − truth‖ / ‖truth‖ per function, (batch,), from (batch, d) point values."""
    return (prediction - truth).norm(dim=1) / truth.norm(dim=1)


@torch.no_grad()
def evaluate(net, problem: GridProblem, batch_size: int = 25) -> dict:
    """Test figures in the data's own units: relative L2 error per function (mean, std), the
    fraction of points inside the central 95 % predictive interval, and the negative log
    predictive density per point."""
    net.eval()
    device = next(net.parameters()).device  # the test data go to the model, wherever it lives
    rel, inside, nlpd = [], 0, 0.0
    for idx in torch.arange(len(problem.a)).split(batch_size):
        pred = net.predict(problem.a[idx].to(device))
        y = problem.raw_outputs(problem.y[idx].to(device))
        mean = problem.raw_outputs(pred.mean)
        std = pred.std * problem.y_std
        rel.append(relative_l2(mean, y).cpu().numpy())
        z = (y - mean) / std
        inside += int((z.abs() <= 1.959964).sum())
        nlpd += float((0.5 * z**2 + torch.log(std) + 0.5 * math.log(2 * math.pi)).sum())
    rel = np.concatenate(rel)
    n = problem.y.numel()
    return {"rel_l2_mean": float(rel.mean()), "rel_l2_std": float(rel.std()), "coverage_95": inside / n,
            "nlpd": nlpd / n, "test_functions": len(rel)}
