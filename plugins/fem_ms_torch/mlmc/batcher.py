"""The multilevel batcher: which samples each level of each optimiser step uses (Rowbottom
et al., §2.2, Algorithm 1).

Level l may use the samples 𝒩_l: the first N_l entries of one fixed random permutation of the
training set, so that 𝒩_L ⊂ … ⊂ 𝒩_0 (the fine data are a subset of the coarse data, as when
fine solves are scarce). One epoch is ⌈N_0 / B_0⌉ steps; step k gives one index set B_l^k of
size B_l per level:

``random``
    every level runs through its own reshuffled passes over 𝒩_l, independently of the other
    levels (the standard MLMC estimator: independent samples across correction terms);
``nested``
    the sets nest, B_L^k ⊂ … ⊂ B_0^k (the multilevel quasi-Monte Carlo variant): B_L^k comes
    from a reshuffled pass over 𝒩_L, and each coarser set adds B_l − B_{l+1} samples drawn
    uniformly from 𝒩_l without those already in B_{l+1}^k, after them: B_{l+1}^k is the head of
    B_l^k, which lets the trainer evaluate each resolution once per step.

A one-level batcher is plain shuffled mini-batching, so single-level training is the same
trainer with a one-level batcher. The epoch's batches depend only on (seed, epoch): a resumed
run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["SAMPLINGS", "MultilevelBatcher"]

SAMPLINGS = ("random", "nested")


class MultilevelBatcher:
    """Index sets per level and step.

    Parameters
    ----------
    n_samples : int
        Size of the training set (every level holds the same samples at its own resolution).
    counts : sequence of int
        N_0 … N_L (non-increasing, each <= n_samples); see :func:`.progression.sample_counts`.
    batch_sizes : sequence of int
        B_0 … B_L (non-increasing, B_l <= N_l); see :func:`.progression.batch_sizes`.
    sampling : {"random", "nested"}
    seed : int
        Fixes 𝒩_l and, with the epoch number, every batch.
    """

    def __init__(self, n_samples: int, counts: Sequence[int], batch_sizes: Sequence[int],
                 sampling: str = "random", seed: int = 0):
        counts, batch_sizes = [int(c) for c in counts], [int(b) for b in batch_sizes]
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; choose one of {SAMPLINGS}")
        if not counts or len(counts) != len(batch_sizes):
            raise ValueError(f"one count and one batch size per level, got {counts} and {batch_sizes}")
        if any(a < b for a, b in zip(counts, counts[1:])) or counts[-1] < 1 or counts[0] > n_samples:
            raise ValueError(f"counts must be non-increasing, >= 1 and <= the {n_samples} samples, got {counts}")
        if any(a < b for a, b in zip(batch_sizes, batch_sizes[1:])) or batch_sizes[-1] < 1:
            raise ValueError(f"batch sizes must be non-increasing and >= 1, got {batch_sizes}")
        too_big = [(l, b, n) for l, (b, n) in enumerate(zip(batch_sizes, counts)) if b > n]
        if too_big:
            l, b, n = too_big[0]
            raise ValueError(f"level {l}: batch size {b} exceeds its {n} samples")
        self.n_samples, self.counts, self.batch_sizes = n_samples, counts, batch_sizes
        self.sampling, self.seed = sampling, int(seed)
        order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(self.seed))
        self.level_samples = [order[:n].sort().values for n in counts]

    @property
    def levels(self) -> int:
        """The number of levels."""
        return len(self.counts)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch: batches of the coarsest level needed to pass over its samples once."""
        return math.ceil(self.counts[0] / self.batch_sizes[0])

    def _passes(self, level: int, size: int, steps: int, generator: torch.Generator) -> torch.Tensor:
        """(steps, size) indices from consecutive reshuffled passes over 𝒩_level."""
        pool = self.level_samples[level]
        needed = steps * size
        chunks = [pool[torch.randperm(len(pool), generator=generator)]
                  for _ in range(math.ceil(needed / len(pool)))]
        return torch.cat(chunks)[:needed].view(steps, size)

    def epoch(self, epoch: int) -> list[list[torch.Tensor]]:
        """The epoch's batches: a list over steps of a list over levels of index tensors."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(epoch) + 1)
        steps = self.steps_per_epoch
        if self.sampling == "random" or self.levels == 1:
            per_level = [self._passes(l, b, steps, generator) for l, b in enumerate(self.batch_sizes)]
            return [[per_level[l][k] for l in range(self.levels)] for k in range(steps)]
        finest = self._passes(self.levels - 1, self.batch_sizes[-1], steps, generator)
        batches = []
        for k in range(steps):
            sets = [finest[k]]
            for l in range(self.levels - 2, -1, -1):
                chosen = sets[0]
                pool = self.level_samples[l]
                free = pool[~torch.isin(pool, chosen)]
                extra = free[torch.randperm(len(free), generator=generator)[:self.batch_sizes[l] - len(chosen)]]
                sets.insert(0, torch.cat([chosen, extra]))
            batches.append(sets)
        return batches
