"""What of a multiscale space does not depend on κ, computed once per mesh pair and reused.

The fine geometry in a global numbering, the neighbourhoods with their partition of unity, and
the index arrays derived from them (the fine cell-grid numbering, the canonical patch positions,
the sparsity pattern of R) are the same for every κ sample on a mesh pair. A dataset of a
thousand samples computes them once.

Lifetime: :meth:`SpaceLayout.of` keeps one layout per (mesh pair, fine element, Dirichlet part
of the boundary) for as long as the :class:`~fem_ms.meshes.NestedMeshes` object lives; when the
pair is garbage collected its layouts go with it. A layout never holds the pair itself (that
would keep it alive), only plain arrays and the fine mesh's communicator. :func:`clear_layouts`
drops them all at once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable

import numpy as np

from ..meshes import NestedMeshes
from .neighbourhoods import FineGeometry, Neighbourhood, build_neighbourhoods

__all__ = ["SpaceLayout", "clear_layouts"]

# id(pair) → {(fine element, Dirichlet sub-domains): SpaceLayout}; entries leave with their pair
_LAYOUTS: dict[int, dict[Hashable, SpaceLayout]] = {}


def _dirichlet_key(bcs) -> tuple:
    return tuple(sorted(repr(bc.sub_domain) for bc in bcs))


class SpaceLayout:
    """The κ-independent part of a multiscale space on one mesh pair.

    Build it with :meth:`of` (cached) rather than directly.

    Attributes
    ----------
    geometry : FineGeometry
        The fine mesh in a global numbering (every rank holds all of it).
    neighbourhoods : list of Neighbourhood
        All coarse neighbourhoods with their DOFs and partition of unity χ_i.
    cells_per_side, coarse_cells_per_side : tuple of int or None
        Of a structured pair (:func:`~fem_ms.meshes.structured_hierarchy`), else ``None``.
    """

    def __init__(self, pair: NestedMeshes, V, bcs):
        self.geometry = FineGeometry.gather(pair, V, bcs)
        self.neighbourhoods: list[Neighbourhood] = build_neighbourhoods(pair, self.geometry)
        self.cells_per_side = pair.cells_per_side
        self.coarse_cells_per_side = pair.coarse_cells_per_side
        self.comm = V.mesh().comm
        self._arrays: dict[Hashable, object] = {}

    @classmethod
    def of(cls, pair: NestedMeshes, V, bcs) -> SpaceLayout:
        """The layout of ``V`` (on ``pair.fine``) with Dirichlet conditions ``bcs``, made on
        first use and then reused for as long as ``pair`` lives."""
        store = _LAYOUTS.get(id(pair))
        if store is None:
            store = _LAYOUTS[id(pair)] = {}
            weakref.finalize(pair, _LAYOUTS.pop, id(pair), None)
        key = (V.ufl_element(), _dirichlet_key(bcs))
        if key not in store:
            store[key] = cls(pair, V, bcs)
        return store[key]

    def cached(self, key: Hashable, compute: Callable[[], object]):
        """``compute()`` on first use of ``key``, the stored value afterwards (index arrays that
        follow from the layout alone)."""
        if key not in self._arrays:
            self._arrays[key] = compute()
        return self._arrays[key]

    def owned_neighbourhoods(self) -> list[int]:
        """The neighbourhoods this rank handles: contiguous blocks of equal size over the ranks
        of the fine mesh's communicator."""
        blocks = np.array_split(np.arange(len(self.neighbourhoods)), self.comm.size)
        return blocks[self.comm.rank].tolist()


def clear_layouts() -> None:
    """Drop every cached layout (they are rebuilt on next use)."""
    for store in _LAYOUTS.values():
        store.clear()
