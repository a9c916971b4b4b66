"""Transfer of P1 fields between two unrelated triangle meshes of the same domain.

The cylinder meshes M1…M4 are generated independently by Gmsh, so they do not nest; a field
given by its values at one mesh's vertices is moved to another mesh's vertices by evaluating
its P1 interpolant there (barycentric weights in the source triangle that contains the
point). Point location uses matplotlib's trapezoid-map finder (a well-kept, tested
implementation); the few target points outside the source mesh (on the cylinder, where a
coarse polygon cuts the circle differently from a fine one) take the value of the nearest
source vertex.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["p1_interpolation"]


def p1_interpolation(source_points: np.ndarray, source_cells: np.ndarray, target_points: np.ndarray) -> sp.csr_matrix:
    """The (n_target, n_source) matrix of P1 interpolation from one triangle mesh to points.

    Parameters
    ----------
    source_points : (n_source, 2) array
    source_cells : (cells, 3) int array
        Triangles of the source mesh (vertex indices).
    target_points : (n_target, 2) array

    Returns
    -------
    scipy.sparse.csr_matrix
        Rows sum to 1; a row has the three barycentric weights of its point (one 1 for a point
        outside the source mesh: its nearest source vertex).
    """
    from matplotlib.tri import Triangulation
    from scipy.spatial import cKDTree

    source_points = np.asarray(source_points, dtype=float)
    target_points = np.asarray(target_points, dtype=float)
    source_cells = np.asarray(source_cells, dtype=np.int64)
    if source_points.ndim != 2 or source_points.shape[1] != 2 or target_points.ndim != 2 or target_points.shape[1] != 2:
        raise ValueError(f"points must be (n, 2) arrays, got {source_points.shape} and {target_points.shape}")
    if source_cells.ndim != 2 or source_cells.shape[1] != 3 or source_cells.min() < 0 \
            or source_cells.max() >= len(source_points):
        raise ValueError(f"cells must be (cells, 3) indices into the {len(source_points)} source points")
    tri = Triangulation(source_points[:, 0], source_points[:, 1], source_cells)
    cell = tri.get_trifinder()(target_points[:, 0], target_points[:, 1])
    inside = cell >= 0
    rows, cols, vals = [], [], []
    verts = source_cells[cell[inside]]                       # (n_in, 3)
    a, b, c = (source_points[verts[:, i]] for i in range(3))
    p = target_points[inside]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    l1 = ((p[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1])) / det
    l2 = ((b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (p[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])) / det
    weights = np.stack([1 - l1 - l2, l1, l2], axis=1)
    index = np.flatnonzero(inside)
    rows.append(np.repeat(index, 3))
    cols.append(verts.ravel())
    vals.append(weights.ravel())
    outside = np.flatnonzero(~inside)
    if len(outside):
        _, nearest = cKDTree(source_points).query(target_points[outside])
        rows.append(outside)
        cols.append(nearest)
        vals.append(np.ones(len(outside)))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(target_points), len(source_points)))

