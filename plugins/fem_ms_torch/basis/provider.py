"""``LearnedBasisProvider``: GMsFEM-NO bases from a checkpoint, in place of the SLEPc eigensolves.

Registered as ``"learned"`` in the ``fem_ms.basis_providers`` entry-point group:
``GMsFEM(problem, pair, n_basis=8, basis="learned", provider_options={"checkpoint": "no.pt"})``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from fem_ms.gmsfem import LocalBases

from .checkpoint import build_model, load_checkpoint
from .features import patch_features
from .rayleigh_ritz import PRECISIONS as RITZ_PRECISIONS, rayleigh_ritz

__all__ = ["LearnedBasisProvider"]


class LearnedBasisProvider:
    """Predicts each neighbourhood's basis from κ on its canonical patch, one model per kind.

    Parameters
    ----------
    checkpoint : path
        Written by :func:`fem_ms_torch.basis.train.train_basis`. A model trained with
        ``oversample`` predicts more than ``n_basis`` functions; its ``n_basis`` lowest
        Rayleigh–Ritz vectors on the local problem (:mod:`.rayleigh_ritz`) are the basis.
    device : str, optional
        ``"cuda"`` when available, else ``"cpu"``.
    precision : {"float32", "bfloat16"}
        Arithmetic of the inference. ``"bfloat16"`` runs the layers' matrix products under
        ``torch.autocast`` (up to twice as fast on CPUs with AVX-512 BF16, and on GPUs; the
        F-FNO's residual stream stays float32). The predicted subspaces differ slightly from
        the float32 ones, and so do the GMsFEM-NO errors (benchmarks/basis_speed.py and
        gmsfem_no_accuracy.py measure both; figures in docs/benchmarks.md): check the GMsFEM
        error of a model before relying on it.
    ritz_precision : {"float32", "float64"}
        Arithmetic of the Rayleigh–Ritz Gram matrices of an oversampled model
        (:func:`.rayleigh_ritz.rayleigh_ritz`): float32 on an orthonormalised span (default,
        faster, and for a trained model the same subspace as float64 up to rounding; docs/gmsfem.md
        has the figures), or float64 for S-orthonormal vectors to rounding.
    """

    name = "learned"
    PRECISIONS = ("float32", "bfloat16")

    def __init__(self, checkpoint, device: str | None = None, precision: str = "float32",
                 ritz_precision: str = "float32"):
        if precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {self.PRECISIONS}, got {precision!r}")
        if ritz_precision not in RITZ_PRECISIONS:
            raise ValueError(f"ritz_precision must be one of {tuple(RITZ_PRECISIONS)}, got {ritz_precision!r}")
        self.path = checkpoint
        self.precision, self.ritz_precision = precision, ritz_precision
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.checkpoint, self.models = _load_models(checkpoint, self.device)

    def local_bases(self, patches, n_basis: int) -> LocalBases:
        ck = self.checkpoint
        if n_basis != ck["n_basis"]:
            raise ValueError(f"checkpoint {self.path} predicts {ck['n_basis']} basis functions, "
                             f"GMsFEM asked for n_basis={n_basis}")
        dim = len(patches.neighbourhoods[0].vertex)
        if dim != ck["dim"]:
            raise ValueError(f"checkpoint {self.path} is for {ck['dim']}D patches, the mesh is {dim}D")
        t0 = time.perf_counter()
        oversampled, ritz_s, network_s = bool(ck["settings"].get("oversample")), 0.0, 0.0
        by_kind: dict[str, list[int]] = {}
        for i in patches.owned:
            by_kind.setdefault(patches.neighbourhoods[i].kind, []).append(i)
        vectors = {}
        for kind, indices in by_kind.items():
            if kind not in self.models:
                raise ValueError(f"checkpoint {self.path} has no model for {kind!r} neighbourhoods "
                                 f"(it has {sorted(self.models)})")
            entry = ck["kinds"][kind]
            kappa = torch.as_tensor(np.stack([patches.kappa_patch(i) for i in indices]))  # float64
            with torch.inference_mode():
                with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                                    enabled=self.precision == "bfloat16"):
                    t_network = time.perf_counter()
                    x = patch_features(kappa.to(self.device, torch.float32), entry["log_kappa_mean"],
                                       entry["log_kappa_std"])
                    pred = self.models[kind](x).float()
                    _synchronize(self.device)
                    network_s += time.perf_counter() - t_network
                if ck["settings"].get("exact_constant"):  # the constant of λ = 0 is put in exactly
                    pred = torch.cat([torch.ones_like(pred[:, :1]), pred], dim=1)
                if oversampled:  # an oversampled space: its n_basis lowest Ritz vectors
                    t_ritz = time.perf_counter()
                    pred = rayleigh_ritz(pred, kappa.to(self.device), n_basis, precision=self.ritz_precision)[0]
                    _synchronize(self.device)
                    ritz_s += time.perf_counter() - t_ritz
                pred = pred.double().cpu().numpy()
            for i, grid in zip(indices, pred):
                positions = patches.grid_positions(i)
                vectors[i] = grid[(slice(None),) + positions].T.copy()
        # "inference" is all of it: patches, network, Rayleigh-Ritz, mapping back; "network" the
        # features and forward passes alone
        timings = {"inference": time.perf_counter() - t0, "network": network_s}
        if oversampled:
            timings["rayleigh_ritz"] = ritz_s
        return LocalBases(vectors, timings=timings)


def _synchronize(device: str) -> None:
    """Wait for queued GPU work, so that the timings are of the work, not of its launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


_LOADED: OrderedDict = OrderedDict()  # (path, mtime, size, device) → (checkpoint, models)


def _load_models(path, device: str):
    """The checkpoint and its models, loaded once per file version and device.

    ``GMsFEM(..., basis="learned", provider_options={"checkpoint": path})`` makes a provider for
    every κ sample; reading and building the models each time cost about as much as the
    inference at 100². The models are in eval mode and only used under ``inference_mode``, so
    providers can share them; a rewritten checkpoint (new mtime or size) is read again.
    """
    stat = Path(path).stat() if Path(path).is_file() else None
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, device) if stat else None
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    checkpoint = load_checkpoint(path)  # also raises the clear errors for a missing/foreign file
    models = {kind: build_model(entry).to(device) for kind, entry in checkpoint["kinds"].items()}
    if key is not None:
        _LOADED[key] = (checkpoint, models)
        while len(_LOADED) > 4:
            _LOADED.popitem(last=False)
    return checkpoint, models
