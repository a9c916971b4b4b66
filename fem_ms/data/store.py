"""Crash-safe, resumable sample storage: one atomically written shard per sample, then HDF5.

While a dataset is generated, every finished sample is written to ``NAME.h5.parts/`` as its own
``.npz`` file under a temporary name and renamed into place, so a sample is either complete or
absent — killing the run loses at most the samples in flight, and rerunning the same command
skips what is done. Ranks write disjoint samples. When all samples are there, rank 0 merges the
shards into ``NAME.h5`` (chunked, gzip-compressed; written to a temporary name, then renamed) and
removes the shards. The config that started the directory is kept in it: a rerun with another
config is refused unless ``overwrite=True``.

Writing by hand rather than with parallel HDF5: HDF5 files are not crash-safe (a write cut off
mid-way can corrupt the whole file) and per-sample atomic renames give resumability for free.

Two independent runs generating the same dataset (two benchmarks sharing the data cache) take
turns through :func:`generation_lock`: the second waits, then finds the finished file. Without
it the first run's merge removed the shard directory the second was still reading.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

__all__ = ["ShardStore", "generation_lock"]


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

    Parameters
    ----------
    path : path
        The final HDF5 file (``NAME.h5``); shards live in ``NAME.h5.parts/``.
    config_json : str
        The generating config; a shard directory started with another config is refused.
    overwrite : bool
        Discard an existing dataset or shard directory made with another config.
    """

    def __init__(self, path, config_json: str, overwrite: bool = False, comm=None):
        self.path = Path(path)
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.config_json = config_json
        self.comm = comm
        rank = 0 if comm is None else comm.rank
        error = None
        if rank == 0:
            try:
                self._prepare(overwrite)
            except Exception as exc:
                error = exc
        if comm is not None:
            error = comm.bcast(error)
            comm.barrier()
        if error is not None:
            raise error

    def _prepare(self, overwrite: bool) -> None:
        if self.path.exists():
            with h5py.File(self.path, "r") as fh:
                same = fh.attrs.get("config") == self.config_json
            if not same and not overwrite:
                raise FileExistsError(
                    f"{self.path} was generated with a different config; pass overwrite=True "
                    f"(--overwrite) to replace it")
            if not same:
                self.path.unlink()
        cfg = self.parts / "config.json"
        if self.parts.exists():
            if cfg.exists() and cfg.read_text() != self.config_json:
                if not overwrite:
                    raise FileExistsError(
                        f"{self.parts} holds samples of a different config; pass overwrite=True "
                        f"(--overwrite) to discard them")
                shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)
        if not cfg.exists():
            _atomic_write_text(cfg, self.config_json)

    @property
    def finished(self) -> bool:
        """Whether the merged HDF5 file exists for this config."""
        if not self.path.exists():
            return False
        with h5py.File(self.path, "r") as fh:
            return fh.attrs.get("config") == self.config_json

    def shard(self, sample: int) -> Path:
        return self.parts / f"sample_{sample:07d}.npz"

    def done(self, sample: int) -> bool:
        return self.shard(sample).exists()

    def write(self, sample: int, arrays: dict) -> None:
        """Write one sample's arrays atomically."""
        fd, tmp = tempfile.mkstemp(dir=self.parts, prefix=f".sample_{sample:07d}.", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.shard(sample))

    def merge(self, n_samples: int, shared: dict, attrs: dict, splits: dict) -> Path:
        """Stack all samples into ``NAME.h5`` (rank 0) and remove the shards.

        ``shared`` holds sample-independent arrays (stored once), ``attrs`` the file attributes,
        ``splits`` named index arrays (e.g. train/test).
        """
        missing = [s for s in range(n_samples) if not self.done(s)]
        if missing:
            raise RuntimeError(f"cannot merge {self.path}: samples {missing[:10]} are missing")
        first = dict(np.load(self.shard(0)))
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".h5")
        os.close(fd)
        with h5py.File(tmp, "w") as fh:
            for key, value in attrs.items():
                fh.attrs[key] = value
            fh.attrs["config"] = self.config_json
            for key, value in shared.items():
                fh.create_dataset(key, data=value)
            for key, value in splits.items():
                fh.create_dataset(f"splits/{key}", data=np.asarray(value, dtype=np.int64))
            dsets = {}
            for key, value in first.items():
                chunk = (1,) + value.shape
                # shard keys use '.' where the HDF5 path has '/'
                dsets[key] = fh.create_dataset(key.replace(".", "/"), shape=(n_samples,) + value.shape, dtype=value.dtype,
                                               chunks=chunk, compression="gzip", compression_opts=4,
                                               shuffle=True)
            for s in range(n_samples):
                arrays = np.load(self.shard(s))
                for key, dset in dsets.items():
                    dset[s] = arrays[key]
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts)
        return self.path


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
