"""The Gmsh ``.geo`` sources shipped with fem-ms, as package data.

The dataset generators mesh the cylinder (``cylinder_M1.geo`` … ``cylinder_M4.geo``) and the
notched triangle (``notched_triangle.geo``) from here, so they work wherever fem-ms is
installed; ``unit_square.geo`` and ``unit_square_inclusion.geo`` are small examples. Physical
curves follow Firedrake's ``UnitSquareMesh`` markers where a square is meshed.

Examples
--------
>>> from fem_ms import geometries, mesh_from_geo
>>> with geometries.geo_file("unit_square.geo") as path:  # doctest: +SKIP
...     mesh = mesh_from_geo(path, mesh_size=0.2)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

__all__ = ["names", "geo_file"]


def names() -> list[str]:
    """The file names of the shipped ``.geo`` sources, sorted."""
    return sorted(entry.name for entry in resources.files(__name__).iterdir() if entry.name.endswith(".geo"))


@contextmanager
def geo_file(name: str) -> Iterator[Path]:
    """A shipped ``.geo`` source as a file path, valid inside the ``with`` block.

    Gmsh reads files by path, so the resource is materialised through
    :func:`importlib.resources.as_file` (the file itself for an ordinary installation, a
    temporary copy when fem-ms is imported from an archive).

    Parameters
    ----------
    name : str
        File name, e.g. ``"cylinder_M2.geo"`` (see :func:`names`).

    Raises
    ------
    FileNotFoundError
        If fem-ms ships no geometry of that name; the message lists those it ships.
    """
    if not isinstance(name, str):
        raise TypeError(f"geometry name must be a string such as 'unit_square.geo', got {name!r}")
    resource = resources.files(__name__) / name
    if not name.endswith(".geo") or not resource.is_file():
        raise FileNotFoundError(f"fem-ms ships no Gmsh geometry {name!r}; shipped: {names()}")
    with resources.as_file(resource) as path:
        yield path
