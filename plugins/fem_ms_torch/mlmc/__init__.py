"""Multilevel Monte Carlo training of neural operators and graph networks (Rowbottom et al.).

* :mod:`.progression` — samples N_l and batch sizes B_l per level;
* :mod:`.batcher` — random or nested index sets per level and step;
* :mod:`.levels` — the same samples at several resolutions (grids, meshes);
* :mod:`.trainer` — :class:`MLMCTrainer` (telescoping-sum gradients, one step per batch) and the
  single-level baseline that shares it;
* :mod:`.run` — ``fem-ms train-mlmc CONFIG``.
"""

from .batcher import SAMPLINGS, MultilevelBatcher
from .levels import GraphLevel, GridLevel, SpaceTimeLevel, cylinder_levels, darcy_levels, vorticity_levels
from .progression import PROGRESSIONS, batch_sizes, sample_counts
from .trainer import LOSSES, MLMCTrainer, train_single_level

__all__ = ["PROGRESSIONS", "SAMPLINGS", "LOSSES", "MultilevelBatcher", "GridLevel", "SpaceTimeLevel", "GraphLevel",
           "darcy_levels", "cylinder_levels", "vorticity_levels", "batch_sizes", "sample_counts", "MLMCTrainer",
           "train_single_level"]
