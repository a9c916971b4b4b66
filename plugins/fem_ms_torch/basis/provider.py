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

from fem_ms.gmsfem import LocalBases, ProviderOptions
from fem_ms.gmsfem.verification import DEFAULT_FIELD_FRACTION, DEFAULT_TOLERANCE

from ..checkpoints import load_checkpoint, stored_model, stored_normaliser
from .features import patch_features
from .rayleigh_ritz import PRECISIONS as RITZ_PRECISIONS
from .rayleigh_ritz import rayleigh_ritz, ritz_residuals

__all__ = ["LearnedBasisProvider", "DEFAULT_TOLERANCE"]


class LearnedBasisProvider(ProviderOptions):
    """Predicts each neighbourhood's basis from κ on its canonical patch, one model per kind.

    Parameters
    ----------
    checkpoint : path
        Written by :func:`fem_ms_torch.basis.train.train_basis`: one model per neighbourhood
        kind (any registered grid operator, neuraloperator's included) with the log-κ
        :class:`~fem_ms_torch.normalisation.Normaliser` it was trained with. A model trained with
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
    verify : {"fallback", "refine", "warn", "off"}
        What to do with neighbourhoods whose a-posteriori indicator (the relative residual of the
        predicted Ritz pairs of the local problem, :mod:`fem_ms.gmsfem.verification`, computed on
        the patch grids beside the network) exceeds ``tolerance``: recompute them with SLEPc
        (``"fallback"``, the default: a learned basis is never worse than the check allows, at
        SLEPc's cost where the network is unreliable, docs/gmsfem.md), improve them by
        shift-and-invert subspace iteration from the predicted span (``"refine"``), only warn
        (``"warn"``), or skip the check (``"off"``). The local bases' ``verification`` reports
        what was done; their timings hold its parts.
    tolerance : float
        The indicator's threshold (calibrated in docs/gmsfem.md).
    max_iterations : int
        The refinement's iteration budget per neighbourhood (``verify="refine"``).
    field_fraction : float
        When more than this fraction of the neighbourhoods is flagged, the field is taken as out
        of the model's distribution and every neighbourhood is refined or recomputed.
    progress : bool
        Accepted as by every provider; the learned provider shows no progress bar (its work is
        a few batched passes per neighbourhood kind).
    max_batch : int
        Patches per batched pass (network, Rayleigh–Ritz, indicator): bounds the memory of the
        pass (a 3D kind's patches at once take gigabytes), not its result.
    """

    name = "learned"
    PRECISIONS = ("float32", "bfloat16")

    def __init__(self, checkpoint, device: str | None = None, precision: str = "float32",
                 ritz_precision: str = "float32", verify: str = "fallback", tolerance: float = DEFAULT_TOLERANCE,
                 max_iterations: int = 3, field_fraction: float = DEFAULT_FIELD_FRACTION, progress: bool = True,
                 max_batch: int = 128):
        super().__init__(progress, verify, tolerance, max_iterations, field_fraction)
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.max_batch = max_batch
        if precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {self.PRECISIONS}, got {precision!r}")
        if ritz_precision not in RITZ_PRECISIONS:
            raise ValueError(f"ritz_precision must be one of {tuple(RITZ_PRECISIONS)}, got {ritz_precision!r}")
        self.path = checkpoint
        self.precision, self.ritz_precision = precision, ritz_precision
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.meta, self.models, self.normalisers = _load_models(checkpoint, self.device)

    def local_bases(self, patches, n_basis: int) -> LocalBases:
        """The networks' bases of every owned neighbourhood, reduced by Rayleigh–Ritz when the
        checkpoint oversamples, checked and repaired as ``verify`` says
        (:meth:`fem_ms.gmsfem.providers.BasisProvider.local_bases`)."""
        meta = self.meta
        if n_basis != meta["n_basis"]:
            raise ValueError(f"checkpoint {self.path} predicts {meta['n_basis']} basis functions, "
                             f"GMsFEM asked for n_basis={n_basis}")
        dim = len(patches.neighbourhoods[0].vertex)
        if dim != meta["dim"]:
            raise ValueError(f"checkpoint {self.path} is for {meta['dim']}D patches, the mesh is {dim}D")
        t0 = time.perf_counter()
        oversampled, ritz_s, network_s, indicator_s = bool(meta["oversample"]), 0.0, 0.0, 0.0
        network_cpu_s = 0.0
        by_kind: dict[str, list[int]] = {}
        for i in patches.owned:
            by_kind.setdefault(patches.neighbourhoods[i].kind, []).append(i)
        vectors, residuals, spans = {}, {}, {}
        for kind, all_indices in by_kind.items():
            if kind not in self.models:
                raise ValueError(f"checkpoint {self.path} has no model for {kind!r} neighbourhoods "
                                 f"(it has {sorted(self.models)})")
            # in chunks of max_batch patches: the activations of a 3D kind's every patch at once
            # take gigabytes (the peak memory of the whole offline stage at 100^3)
            for start in range(0, len(all_indices), self.max_batch):
                indices = all_indices[start:start + self.max_batch]
                kappa = torch.as_tensor(patches.kappa_patches(indices))  # float64
                with torch.inference_mode():
                    with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                                        enabled=self.precision == "bfloat16"):
                        t_network, cpu_network = time.perf_counter(), time.process_time()
                        x = patch_features(kappa.to(self.device, torch.float32),
                                           *self.normalisers[kind].log_input_stats)
                        pred = self.models[kind](x).float()
                        _synchronize(self.device)
                        network_s += time.perf_counter() - t_network
                        network_cpu_s += time.process_time() - cpu_network
                    if meta["exact_constant"]:  # the constant of λ = 0 is put in exactly
                        pred = torch.cat([torch.ones_like(pred[:, :1]), pred], dim=1)
                    span = pred
                    if oversampled or self.verify != "off":  # the n_basis lowest Ritz pairs in the predicted span
                        t_ritz = time.perf_counter()
                        pred, values = rayleigh_ritz(pred, kappa.to(self.device), n_basis,
                                                     precision=self.ritz_precision)
                        _synchronize(self.device)
                        ritz_s += time.perf_counter() - t_ritz
                    if self.verify != "off":
                        t_indicator = time.perf_counter()
                        eta = ritz_residuals(pred, values, kappa.to(self.device)).cpu().numpy()
                        indicator_s += time.perf_counter() - t_indicator
                    pred = pred.double().cpu().numpy()
                # every patch's grid values to its DOFs in one gather: (patches, DOFs, n_basis)
                to_dofs = patches.grid_to_dofs(indices)
                on_dofs = np.take_along_axis(pred.reshape(*pred.shape[:2], -1), to_dofs[:, None], 2).transpose(0, 2, 1)
                on_dofs = np.ascontiguousarray(on_dofs)
                for k, i in enumerate(indices):
                    vectors[i] = on_dofs[k]
                    if self.verify != "off":
                        residuals[i] = eta[k]
                        if not eta[k].max() <= self.tolerance:  # a wider start for the refinement
                            spans[i] = span[k].double().cpu().numpy()[(slice(None),) + patches.grid_positions(i)].T
        # "inference" is all of it: patches, network, Rayleigh-Ritz, indicator, mapping back; "network"
        # the features and forward passes alone, "network_cpu" the same in process (CPU) seconds of this
        # process, which the load of other processes on a shared machine does not inflate
        timings = {"inference": time.perf_counter() - t0, "network": network_s, "network_cpu": network_cpu_s,
                   "rayleigh_ritz": ritz_s}
        if self.verify != "off":
            timings["indicator"] = indicator_s
        return self.verified(patches, LocalBases(vectors, timings=timings, residuals=residuals), n_basis, spans)


def _synchronize(device: str) -> None:
    """Wait for queued GPU work, so that the timings are of the work, not of its launch."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


_LOADED: OrderedDict = OrderedDict()  # (path, mtime, size, device) → (meta, models, normalisers)


def _load_models(path, device: str):
    """The checkpoint's facts (N_bf, dimension, exact constant, oversampling), its models and
    their normalisers by neighbourhood kind, loaded once per file version and device.

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
    if checkpoint["trainer"] != "basis":
        raise ValueError(f"{path} holds a {checkpoint['trainer']!r} model, not GMsFEM-NO bases (train_basis)")
    kinds = checkpoint["models"]
    loaded = (checkpoint["meta"], {kind: stored_model(checkpoint, path, kind, device) for kind in kinds},
              {kind: stored_normaliser(checkpoint, path, kind) for kind in kinds})
    if key is not None:
        _LOADED[key] = loaded
        while len(_LOADED) > 4:
            _LOADED.popitem(last=False)
    return loaded
