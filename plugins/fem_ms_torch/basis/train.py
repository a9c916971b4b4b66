"""Training of GMsFEM-NO models, one per neighbourhood kind, with resumable checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data import GMsFEMBasisDataset
from ..distributed import data_parallel
from ..operators import ARCHITECTURES
from .checkpoint import load_checkpoint, save_checkpoint
from .features import energy_embedding, n_features, patch_features, self_energy_embedding, vertex_mass
from .losses import rbfl2_loss, sal_loss, sal_pr_loss

__all__ = ["train_basis", "LOSSES", "INNER_PRODUCTS"]

LOSSES = {"sal": sal_loss, "sal-pr": sal_pr_loss, "rbfl2": rbfl2_loss}
INNER_PRODUCTS = ("euclidean", "kappa", "energy")


def train_basis(dataset, out, kinds=None, epochs: int = 50, batch_size: int = 16, lr: float = 1e-3,
                loss: str = "sal", width: int = 32, depth: int = 4, modes: int = 12, seed: int = 0,
                architecture: str = "ffno", inner_product: str = "energy", exact_constant: bool = True,
                oversample: int = 0, device: str | None = None, progress: bool = True) -> Path:
    """Train one neural operator per neighbourhood kind on a ``gmsfem_basis`` dataset.

    AdamW with a cosine schedule; a checkpoint after every epoch. Each kind's training split is
    held in memory while that kind trains (:meth:`GMsFEMBasisDataset.tensors`). Rerunning with
    the same arguments after an interruption continues from the last checkpoint (and ends where
    an uninterrupted run ends); a checkpoint written with other arguments is refused. Launched by
    ``torchrun --nproc_per_node=G``, the G processes train with DistributedDataParallel, each on
    its share of every batch of ``batch_size`` (the global batch), on its own GPU when there are
    GPUs; rank 0 writes the checkpoint.

    Parameters
    ----------
    dataset : path
        A ``gmsfem_basis`` HDF5 file (:func:`fem_ms.data.generate`).
    out : path
        The checkpoint to write (and to resume from).
    kinds : list of str, optional
        Neighbourhood kinds to train (default: all in the dataset).
    epochs, batch_size, lr, seed : training settings.
    loss : {"sal", "sal-pr", "rbfl2"}
    width, depth, modes : size of the operator.
    architecture : {"ffno", "fno", ...}
        A name in :data:`fem_ms_torch.operators.ARCHITECTURES`.
    inner_product : {"energy", "euclidean", "kappa"}
        Of the loss (:mod:`.losses`): the energy A + τS of the local problem (default;
        :func:`.features.energy_embedding`, τ the true basis's Rayleigh quotient, so that both
        terms weigh alike), which counts a basis function's gradient errors where κ is large,
        as GMsFEM's error does; Euclidean on the patch's vertex grid; or the lumped κ-weighted
        mass (:func:`.features.vertex_mass`), GMsFEM's S-inner product. On 100² / 5×5 data the
        energy product gave clearly lower GMsFEM-NO errors than the Euclidean one (docs/gmsfem.md).
    exact_constant : bool
        The first basis function of every neighbourhood is the constant (the eigenfunction of
        λ = 0 of the κ-weighted Neumann problem, for every κ), so the network predicts the other
        N_bf − 1 and the constant is put in exactly (default). The coarse hat function χ_i is
        then in the GMsFEM space exactly, as with SLEPc's bases (docs/gmsfem.md has the measured
        effect). A dataset whose first basis functions are not constant is refused.
    oversample : int
        Predict ``oversample`` functions more than N_bf and train the span of the prediction to
        *contain* the true span (SAL and SAL-PR measure exactly that for a wider prediction);
        the provider reduces the prediction to N_bf functions by Rayleigh–Ritz on the local
        problem (:mod:`.rayleigh_ritz`). Default 0: N_bf functions, compared span to span.
        Not with ``loss="rbfl2"``, which compares function by function.
    device : str, optional
        ``"cpu"`` or ``"cuda"`` (default: CUDA when available).
    progress : bool
        A progress bar with the loss (rank 0).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    if inner_product not in INNER_PRODUCTS:
        raise ValueError(f"unknown inner_product {inner_product!r}; known: {list(INNER_PRODUCTS)}")
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 0:
        raise ValueError(f"oversample must be a non-negative integer, got {oversample!r}")
    if oversample and loss == "rbfl2":
        raise ValueError("oversample needs a subspace loss ('sal' or 'sal-pr'): rbfl2 compares the "
                         "predicted functions one by one with the true ones")
    ranks = data_parallel(device)
    device = ranks.device
    dataset, out = Path(dataset), Path(out)
    import h5py

    with h5py.File(dataset, "r") as fh:
        meta = json.loads(fh.attrs["config"])
        available = [k for k in ("full", "half", "quarter", "corner") if k in fh]
    kinds = list(kinds or available)
    missing = sorted(set(kinds) - set(available))
    if missing:
        raise ValueError(f"{dataset} has no patches of kind {missing}; it has {available}")
    settings = dict(dataset=str(dataset.resolve()), kinds=kinds, epochs=epochs, batch_size=batch_size,
                    lr=lr, loss=loss, width=width, depth=depth, modes=modes, seed=seed, architecture=architecture)
    if inner_product != "euclidean":  # checkpoints written before the option were Euclidean
        settings["inner_product"] = inner_product
    if exact_constant:  # and they predicted all N_bf functions
        settings["exact_constant"] = True
    if oversample:
        settings["oversample"] = oversample
    state = {"settings": settings, "n_basis": meta["n_basis"], "dim": meta["dim"], "kinds": {}, "done": {}}
    if out.exists():
        previous = load_checkpoint(out)
        if previous.get("settings") != settings:
            raise FileExistsError(f"{out} was trained with other settings; remove it or choose another path")
        state = previous
    for kind in kinds:
        done = state["done"].get(kind, 0)
        if done >= epochs:
            continue
        data = GMsFEMBasisDataset(dataset, kind, "train").tensors(("kappa", "basis"))
        if exact_constant:
            _check_constant_first(data["basis"], dataset, kind)
        log_kappa = torch.log(data["kappa"].double())
        mean, std = float(log_kappa.mean()), float(log_kappa.std().clamp_min(1e-6))
        torch.manual_seed(seed)
        model = ARCHITECTURES[architecture](n_features(meta["dim"]), meta["n_basis"] - int(exact_constant) + oversample,
                                            dim=meta["dim"], width=width, depth=depth, modes=modes).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        if kind in state["kinds"]:
            entry = state["kinds"][kind]
            model.load_state_dict(entry["state_dict"])
            optimizer.load_state_dict(entry["optimizer"])
            scheduler.load_state_dict(entry["scheduler"])
        net = ranks.wrap(model)
        generator = torch.Generator()
        bar = tqdm(range(done, epochs), desc=f"GMsFEM-NO {kind} ({loss})", unit="epoch",
                   disable=not progress or not ranks.is_main)
        for epoch in bar:
            generator.manual_seed(seed + epoch)  # the same shuffles whether or not the run was resumed
            steps = ranks.local_batches(torch.randperm(len(data["kappa"]), generator=generator), batch_size)
            model.train()
            total, count = 0.0, 0
            for indices, weight in steps:
                kappa = data["kappa"][indices, 0].to(device)
                true = data["basis"][indices].to(device)
                pred = net(patch_features(kappa, mean, std))
                if exact_constant:  # the data's own constant, so that RBFL2's normalisation matches
                    pred = torch.cat([true[:, :1], pred], dim=1)
                value = LOSSES[loss](*_in_inner_product(inner_product, pred, true, kappa))
                optimizer.zero_grad()
                (value * weight).backward()
                optimizer.step()
                if weight:
                    total += float(value.detach()) * len(kappa)
                    count += len(kappa)
            scheduler.step()
            total, count = ranks.sum(total, count)
            bar.set_postfix(loss=f"{total / count:.4g}")
            state["kinds"][kind] = {"architecture": architecture, "model": model.config,
                                    "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                    "log_kappa_mean": mean, "log_kappa_std": std,
                                    "train_loss": total / count}
            state["done"][kind] = epoch + 1
            if ranks.is_main:
                save_checkpoint(out, state)
            ranks.barrier()
    return out


def _check_constant_first(basis: torch.Tensor, dataset, kind: str) -> None:
    """Refuse ``exact_constant`` for data whose first basis functions are not constant."""
    first = basis[:, 0].flatten(1)
    spread = (first.max(dim=1).values - first.min(dim=1).values) / first.abs().max(dim=1).values.clamp_min(1e-300)
    worst = float(spread.max())
    if worst > 1e-4:
        raise ValueError(f"{dataset}: the first basis functions of the {kind!r} patches are not constant "
                         f"(relative spread up to {worst:.2g}); train with exact_constant=False")


def _in_inner_product(inner_product: str, pred, true, kappa):
    """(pred, true, weight) for a loss: the (batch, n_basis, *vertices) bases flattened to
    (batch, n_basis, points) so that the loss's inner product is ``inner_product``."""
    if inner_product == "energy":
        with torch.no_grad():
            true, tau = self_energy_embedding(true, kappa)
        return energy_embedding(pred, kappa, tau), true, None
    weight = vertex_mass(kappa).flatten(1).to(pred.dtype) if inner_product == "kappa" else None
    return pred.flatten(2), true.flatten(2), weight
