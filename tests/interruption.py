"""Simulated kills of a training run, for the exact-resume tests of every trainer."""

from contextlib import contextmanager

from fem_ms_torch.checkpoints import Checkpoint


@contextmanager
def killed_after_saves(saves: int):
    """Stop training with ``KeyboardInterrupt`` right after its ``saves``-th checkpoint write,
    as a kill between two epochs would (a kill during an epoch loses that epoch alone)."""
    real = Checkpoint.update
    count = 0

    def update(self, *args, **kwargs):
        nonlocal count
        real(self, *args, **kwargs)
        count += 1
        if count == saves:
            raise KeyboardInterrupt

    Checkpoint.update = update
    try:
        yield
    finally:
        Checkpoint.update = real
