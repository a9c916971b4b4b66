"""Crash-safe, resumable sample storage: one atomically written shard per sample, then HDF5.

While a dataset is generated, every finished sample is written to ``NAME.h5.parts/`` as its own
``.npz`` file under a temporary name and renamed into place, so a sample is either complete or
absent — killing the run loses at most the samples in flight, and rerunning the same command
skips what is done. Ranks write disjoint samples. When all samples are there, rank 0 merges the
shards into ``NAME.h5`` (in the layout of :mod:`fem_ms.data.schema`; written to a temporary name,
then renamed), removes the shards and writes the XDMF sidecar ``NAME.xdmf`` through which
ParaView opens the file (:mod:`fem_ms.data.xdmf`). The config that started the directory is kept in it: a
rerun with another config is refused unless ``overwrite=True``. A run killed part-way can leave
temporaries (a half-merged ``.NAME.h5.XXXXXXXX.h5``, a half-written shard); the next run on the
dataset removes them.

Writing by hand rather than with parallel HDF5: HDF5 files are not crash-safe (a write cut off
mid-way can corrupt the whole file) and per-sample atomic renames give resumability for free.

Two independent runs generating the same dataset (two benchmarks sharing the data cache) take
turns through :func:`generation_lock`: the second waits, then finds the finished file. Without
it the first run's merge removed the shard directory the second was still reading.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_path, write_text_atomically
from .config import load_config
from .schema import FORMAT_VERSION, create_dataset, write_header
from .xdmf import sidecar_path, write_xdmf

__all__ = ["ShardStore", "generation_lock"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def generation_lock(path):
    """Hold an exclusive lock on generating the dataset ``path`` (``NAME.h5``).

    An advisory ``flock`` on ``.NAME.h5.lock`` beside it, released when the block ends or the
    process dies; a process that has to wait says so on stderr. The lock file stays: removing it
    would let a third process lock a different file.
    """
    path = Path(path)
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"fem-ms: another process is generating {path}; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class ShardStore:
    """The shards of one dataset being generated.

    The caller holds :func:`generation_lock` on rank 0 (as :func:`fem_ms.data.generate` does),
    so that nothing else writes this dataset meanwhile: the temporaries that earlier runs left
    behind are then known to be orphans, and are removed.

    Parameters
    ----------
    path : path
        The final HDF5 file (``NAME.h5``); shards live in ``NAME.h5.parts/``.
    config : dataset config
        The generating config; a file or shard directory made with another config is refused.
    overwrite : bool
        Discard an existing dataset or shard directory made with another config, or a dataset
        of an older format version.
    comm : mpi4py communicator, optional

    Attributes
    ----------
    finished : bool
        Whether ``path`` already holds this dataset (nothing to generate).
    """

    def __init__(self, path, config, overwrite: bool = False, comm=None):
        self.path = Path(path)
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.config = config
        self.comm = comm
        rank = 0 if comm is None else comm.rank
        result = None
        if rank == 0:
            try:
                result = self._prepare(overwrite)
            except Exception as exc:
                result = exc
        if comm is not None:
            result = comm.bcast(result)
            comm.barrier()
        if isinstance(result, Exception):
            raise result
        self.finished = result

    def _same_config(self, text) -> bool:
        """Whether the JSON ``text`` describes this config (keys added since it was written
        take their defaults, which is what the run that wrote it did)."""
        try:
            return load_config(json.loads(text)) == self.config
        except (TypeError, ValueError):
            return False

    def _prepare(self, overwrite: bool) -> bool:
        _remove_leftovers(self.path, self.parts)
        if self.path.exists():
            try:
                with h5py.File(self.path, "r") as fh:
                    text, version = fh.attrs.get("config"), int(fh.attrs.get("format_version", 1))
            except OSError:
                text, version = None, None
            same = self._same_config(text)
            if not same and not overwrite:
                raise FileExistsError(
                    f"{self.path} was generated with a different config (or is not a readable dataset); pass "
                    f"overwrite=True (--overwrite) to replace it")
            if same and (version == FORMAT_VERSION or not overwrite):
                if version != FORMAT_VERSION:
                    logger.warning("%s has dataset format version %s; kept as it is (overwrite=True, or "
                                   "--overwrite, regenerates it in version %s)", self.path, version, FORMAT_VERSION)
                if not sidecar_path(self.path).exists():  # a dataset finished before sidecars were written
                    write_xdmf(self.path)
                return True
            self.path.unlink()
        cfg = self.parts / "config.json"
        if self.parts.exists():
            if cfg.exists() and not self._same_config(cfg.read_text()):
                if not overwrite:
                    raise FileExistsError(
                        f"{self.parts} holds samples of a different config; pass overwrite=True "
                        f"(--overwrite) to discard them")
                shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)
        if not cfg.exists():
            write_text_atomically(cfg, self.config.to_json())
        return False

    def shard(self, sample: int) -> Path:
        """The file of sample ``sample``'s arrays (whether or not it has been written)."""
        return self.parts / f"sample_{sample:07d}.npz"

    def done(self, sample: int) -> bool:
        """Whether sample ``sample`` has been written (a resumed run skips it)."""
        return self.shard(sample).exists()

    def count_done(self) -> int:
        """The samples done so far, by any rank (the temporaries of writes in flight start with '.')."""
        return sum(1 for _ in self.parts.glob("sample_*.npz"))

    def write(self, sample: int, arrays: dict) -> None:
        """Write one sample's arrays atomically."""
        fd, tmp = tempfile.mkstemp(dir=self.parts, prefix=f".sample_{sample:07d}.", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.shard(sample))

    def merge(self, shared: dict, attrs: dict, progress: bool = False) -> Path:
        """Stack all samples into ``NAME.h5`` (rank 0) and remove the shards.

        ``shared`` holds sample-independent arrays (stored once), ``attrs`` file attributes
        besides those of the schema (:func:`~fem_ms.data.schema.write_header`); the splits
        come from the config. Every dataset is created through the schema, which refuses one it
        does not declare. ``progress`` shows a progress bar.
        """
        n_samples, kind, storage = self.config.samples, self.config.kind, self.config.storage_dtype
        missing = [s for s in range(n_samples) if not self.done(s)]
        if missing:
            raise RuntimeError(f"cannot merge {self.path}: samples {missing[:10]} are missing")
        with np.load(self.shard(0)) as first:
            layout = {key: (first[key].shape, first[key].dtype) for key in first.files}
        # the name _remove_leftovers recognises: .NAME.h5.XXXXXXXX.h5
        with atomic_path(self.path, suffix=".h5") as tmp:
            with h5py.File(tmp, "w") as fh:
                write_header(fh, self.config, attrs)
                for key, value in shared.items():
                    create_dataset(fh, kind, key, storage, data=value)
                for name, indices in self.config.split_indices().items():
                    create_dataset(fh, kind, f"splits/{name}", storage, data=indices)
                # shard keys use '.' where the HDF5 path has '/'
                dsets = {key: create_dataset(fh, kind, key.replace(".", "/"), storage, shape=(n_samples,) + shape,
                                             dtype=dtype) for key, (shape, dtype) in layout.items()}
                for s in tqdm(range(n_samples), desc=f"merging {self.path.name}", unit="sample", disable=not progress):
                    with np.load(self.shard(s)) as arrays:
                        for key, dset in dsets.items():
                            dset[s] = arrays[key]
        shutil.rmtree(self.parts)
        write_xdmf(self.path)
        return self.path


def _remove_leftovers(path: Path, parts: Path) -> None:
    """Remove the temporaries of runs on ``path`` that were killed part-way: a merge's
    ``.NAME.h5.XXXXXXXX.h5`` and a sidecar's ``.NAME.xdmf.XXXXXXXX`` beside it
    (``tempfile.mkstemp``'s eight random characters) and the half-written ``.sample_*`` and
    ``.config.json.*`` files in the shard directory. Only for a caller holding
    :func:`generation_lock`: their writers are then gone."""
    merges = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.h5")
    sidecars = re.compile(rf"\.{re.escape(sidecar_path(path).name)}\.[a-z0-9_]{{8}}")
    leftovers = [p for p in path.parent.iterdir() if merges.fullmatch(p.name) or sidecars.fullmatch(p.name)] \
        if path.parent.is_dir() else []
    if parts.is_dir():
        leftovers += [p for p in parts.iterdir() if p.name.startswith(".")]
    if leftovers:
        size = sum(p.stat().st_size for p in leftovers)
        logger.warning("removing %d temporary files (%.1f MB) that interrupted runs left behind: %s", len(leftovers),
                       size / 1e6, ", ".join(p.name for p in leftovers))
    for p in leftovers:
        p.unlink(missing_ok=True)


