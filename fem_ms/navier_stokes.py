"""Incompressible flow past a cylinder: Taylor–Hood P2/P1, Crank–Nicolson in time.

``∂u/∂t + (u·∇)u − ∇·(2/Re ε(u)) + ∇p = 0, ∇·u = 0`` on a channel around a cylinder of
diameter 1 (``fem_ms/geometries/cylinder_M*.geo``): u = (1 + δ(y), 0) at the inlet with a random profile
perturbation δ, u = (1, 0) on the channel walls, u = 0 on the cylinder, and the do-nothing
(traction-free) condition at the outlet — the setting of the MLMC paper's cylinder data set.
Each Crank–Nicolson step is a nonlinear problem solved by Newton (PETSc SNES, MUMPS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ufl
from tqdm.auto import tqdm

import firedrake as fd

__all__ = ["CylinderFlow", "INLET", "OUTLET", "WALLS", "CYLINDER", "mesh_edges"]

INLET, OUTLET, WALLS, CYLINDER = 1, 2, 3, 4  # physical curves of fem_ms/geometries/cylinder_M*.geo


def mesh_edges(cells: np.ndarray) -> np.ndarray:
    """The unique undirected edges (i < j) of a triangle mesh given its (cells, 3) vertex array."""
    pairs = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]])
    return np.unique(np.sort(pairs, axis=1), axis=0)


@dataclass
class CylinderFlow:
    """One flow simulation on a cylinder mesh.

    Parameters
    ----------
    mesh : firedrake.MeshGeometry
        A mesh of ``fem_ms/geometries/cylinder_M*.geo`` (its boundary markers are used).
    reynolds : float
        Re (200: past the Hopf bifurcation, a von Kármán street develops).
    dt, t_end : float
        Time step and final time (the paper: 0.25 and 50).
    save_every : int
        Store a snapshot every this many steps (4: every time unit).
    channel : tuple of float
        (y_min, y_max) of the inlet, for the profile perturbation.
    """

    mesh: fd.MeshGeometry
    reynolds: float = 200.0
    dt: float = 0.25
    t_end: float = 50.0
    save_every: int = 4
    channel: tuple = (-4.0, 4.0)

    def __post_init__(self):
        if not self.reynolds > 0 or not self.dt > 0 or not self.t_end > 0:
            raise ValueError("reynolds, dt and t_end must be positive")
        steps = self.t_end / self.dt
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"t_end={self.t_end} is not a whole number of steps dt={self.dt}")
        self.n_steps = int(round(steps))
        if self.save_every < 1 or self.n_steps % self.save_every:
            raise ValueError(f"save_every={self.save_every} must divide the {self.n_steps} steps")
        self.P1 = fd.FunctionSpace(self.mesh, "CG", 1)
        self.P1v = fd.VectorFunctionSpace(self.mesh, "CG", 1)

    @property
    def coordinates(self) -> np.ndarray:
        """Coordinates of the P1 nodes (the vertices), in the order of the snapshots."""
        return fd.Function(self.P1v).interpolate(fd.SpatialCoordinate(self.mesh)).dat.data_ro.copy()

    @property
    def cells(self) -> np.ndarray:
        """(cells, 3) P1 node indices of every triangle."""
        return self.P1.cell_node_map().values.copy()

    def run(self, inflow_coefficients, progress: bool = False):
        """Simulate with inlet profile u_x = 1 + Σ_k c_k sin(kπ(y − y_min)/(y_max − y_min)).

        Returns
        -------
        times : ndarray (T,)
        velocity : ndarray (T, nodes, 2)
            P2 velocity interpolated at the P1 nodes (exact nodal values).
        pressure : ndarray (T, nodes)
        """
        mesh = self.mesh
        V = fd.VectorFunctionSpace(mesh, "CG", 2)
        W = V * self.P1
        w, w_n = fd.Function(W), fd.Function(W)
        u, p = ufl.split(w)
        u_n, _ = ufl.split(w_n)
        v, q = fd.TestFunctions(W)
        x, y = fd.SpatialCoordinate(mesh)
        lo, hi = self.channel
        delta = sum(float(c) * ufl.sin((k + 1) * ufl.pi * (y - lo) / (hi - lo))
                    for k, c in enumerate(np.atleast_1d(inflow_coefficients)))
        free_stream = fd.Constant((1.0, 0.0))
        bcs = [fd.DirichletBC(W.sub(0), ufl.as_vector((1.0 + delta, 0.0)), INLET),
               fd.DirichletBC(W.sub(0), free_stream, WALLS),
               fd.DirichletBC(W.sub(0), fd.Constant((0.0, 0.0)), CYLINDER)]
        k = fd.Constant(self.dt)
        nu2 = fd.Constant(2.0 / self.reynolds)
        u_mid = 0.5 * (u + u_n)
        eps = ufl.sym
        F = (ufl.inner((u - u_n) / k, v) + ufl.inner(ufl.dot(ufl.grad(u_mid), u_mid), v)
             + nu2 * ufl.inner(eps(ufl.grad(u_mid)), eps(ufl.grad(v)))
             - p * ufl.div(v) + q * ufl.div(u)) * ufl.dx
        w_n.sub(0).assign(free_stream)  # impulsive start from the free stream
        w.assign(w_n)
        solver = fd.NonlinearVariationalSolver(
            fd.NonlinearVariationalProblem(F, w, bcs=bcs),
            solver_parameters={"snes_type": "newtonls", "snes_linesearch_type": "basic",
                               "snes_rtol": 1e-8, "snes_atol": 1e-10, "snes_max_it": 25,
                               "snes_error_if_not_converged": True, "ksp_type": "preonly",
                               "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
        u1 = fd.Function(self.P1v)
        times, velocity, pressure = [], [], []
        for step in tqdm(range(1, self.n_steps + 1), desc="Navier-Stokes (Crank-Nicolson)", unit="step",
                         disable=not progress, leave=False):
            solver.solve()
            w_n.assign(w)
            if step % self.save_every == 0:
                u1.interpolate(w.sub(0))
                times.append(step * self.dt)
                velocity.append(u1.dat.data_ro.copy())
                pressure.append(w.sub(1).dat.data_ro.copy())
        return np.array(times), np.stack(velocity), np.stack(pressure)
