"""Files written so that a reader sees the old file or the new one, never a partial one.

Written by hand: the standard library has the pieces (``tempfile.mkstemp``, ``os.replace``) but
not their combination, and the one package that offered it (atomicwrites) is unmaintained.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomically"]


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed to ``path`` when the block ends.

    Parameters
    ----------
    path : str or Path
        The file to (re)place. Its folder is created if needed.
    suffix : str
        The temporary file's suffix (some writers choose the format by it). The temporary is
        named ``.NAME.XXXXXXXX<suffix>`` beside ``path``, so interrupted writes can be found.

    Yields
    ------
    Path
        The temporary file (it exists, empty). On normal exit it is made readable under the
        umask (``mkstemp`` creates it ``0600``) and renamed to ``path``; on an exception,
        including KeyboardInterrupt, it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
