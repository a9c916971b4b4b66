"""Data-parallel training over processes (torch DistributedDataParallel, launched by torchrun).

``torchrun --nproc_per_node=G fem-ms train-basis CONFIG`` starts G processes; each one calls
:func:`data_parallel`, which joins the process group torchrun describes in the environment
(NCCL on GPUs, gloo on CPUs), picks its GPU, and splits every global batch over the ranks so
that the averaged gradient equals the gradient of the same global batch on one process. A run on
G processes therefore follows the single-process run up to floating-point summation order
(tested), and checkpoints written by one are resumed by the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DataParallel", "check_device", "data_parallel"]


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run (``world == 1``: a plain single process)."""

    rank: int
    world: int
    device: str

    @property
    def is_main(self) -> bool:
        """The rank that writes checkpoints and shows progress."""
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` wrapped in DistributedDataParallel when there are several ranks."""
        if self.world == 1:
            return model
        ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def local_batches(self, order: torch.Tensor, batch_size: int) -> list[tuple[list[int], float]]:
        """Split each global batch of ``order`` over the ranks; return this rank's
        ``(indices, loss weight)`` per step.

        DistributedDataParallel averages gradients over ranks; weighting a rank's mean loss by
        ``world · n_local / n_global`` makes that average the mean over the global batch even
        when the last batch does not divide evenly. A rank left without samples evaluates one
        sample with weight 0, so that every rank takes part in every gradient reduction.
        """
        steps = []
        for batch in order.split(batch_size):
            mine = batch[self.rank::self.world].tolist()
            if mine:
                steps.append((mine, self.world * len(mine) / len(batch)))
            else:
                steps.append((batch[:1].tolist(), 0.0))
        return steps

    def sum(self, *values: float) -> list[float]:
        """Sum of each value over the ranks."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64,
                         device=self.device if self.device.startswith("cuda") else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.world > 1:
            dist.barrier()


def check_device(device: str | None, where: str) -> None:
    """ValueError naming ``device`` unless it is None (the run's default) or a device torch knows
    and, for CUDA, one that is present: a config asking for a GPU fails before any work."""
    if device is None:
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{where}: device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"{where}: device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{where}: device {device!r} requested but CUDA is not available")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"{where}: device {device!r} requested but only {torch.cuda.device_count()} CUDA "
                             "devices are visible")


def data_parallel(device: str | None = None) -> DataParallel:
    """Join the process group torchrun set up (if any) and choose this rank's device.

    Parameters
    ----------
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default CUDA when available. With several ranks on CUDA, rank
        ``LOCAL_RANK`` takes GPU ``LOCAL_RANK``.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DataParallel(0, 1, device)
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs are visible")
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return DataParallel(dist.get_rank(), dist.get_world_size(), device)
