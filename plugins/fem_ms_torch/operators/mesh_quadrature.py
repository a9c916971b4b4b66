"""Quadrature weights on the vertices of a 2D triangle mesh known only by its edges (the
cylinder-flow graphs store coordinates and edges), for ``SparseDiscoConv``.

The faces are recovered from the edge graph and each triangle's area is lumped equally to its
three vertices (the lumped P1 mass matrix): Σ_j q_j u(x_j) is then exact for piecewise-linear u.
Written here because the meshes' cells are not stored and Delaunay triangulations of the points
would fill holes such as the cylinder.
"""

from __future__ import annotations

import numpy as np

__all__ = ["triangles_from_edges", "lumped_vertex_weights"]


def _cross(o, a, b):
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def triangles_from_edges(points, edges) -> np.ndarray:
    """The faces (T, 3) of a planar triangulation given its vertices (N, 2) and edges (E, 2).

    Faces are the 3-cycles of the edge graph that contain no other vertex: a 3-cycle that is not
    a face encloses vertices, and then a common neighbour of two of its corners lies inside it.
    """
    points = np.asarray(points, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.int64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got {points.shape}")
    if edges.ndim != 2 or edges.shape[1] != 2 or edges.min(initial=0) < 0 or edges.max(initial=-1) >= len(points):
        raise ValueError(f"edges must be (E, 2) vertex indices below {len(points)}, got shape {edges.shape}")
    neighbours = [set() for _ in range(len(points))]
    for a, b in edges:
        if a != b:
            neighbours[a].add(int(b))
            neighbours[b].add(int(a))
    faces = []
    for a in range(len(points)):
        for b in (n for n in neighbours[a] if n > a):
            common = neighbours[a] & neighbours[b]
            for c in (n for n in common if n > b):
                tri = points[[a, b, c]]
                area2 = _cross(tri[0], tri[1], tri[2])
                others = np.array(sorted((common | (neighbours[a] & neighbours[c])) - {a, b, c}), dtype=np.int64)
                if len(others):
                    p = points[others]
                    s = np.sign(area2)
                    inside = (s * _cross(tri[0], tri[1], p) > 0) & (s * _cross(tri[1], tri[2], p) > 0) \
                        & (s * _cross(tri[2], tri[0], p) > 0)
                    if inside.any():
                        continue
                faces.append((a, b, c))
    return np.array(faces, dtype=np.int64).reshape(-1, 3)


def lumped_vertex_weights(points, triangles) -> np.ndarray:
    """Vertex weights (N,): a third of the area of every triangle at the vertex."""
    points = np.asarray(points, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    p = points[triangles]
    area = 0.5 * np.abs(_cross(p[:, 0], p[:, 1], p[:, 2]))
    weights = np.zeros(len(points))
    np.add.at(weights, triangles.ravel(), np.repeat(area / 3, 3))
    return weights
