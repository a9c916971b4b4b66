"""Dataset generation: sample by sample from integer seeds, spread over MPI ranks, resumable.

Each sample is computed on ``COMM_SELF`` by one rank (rank r takes samples s ≡ r mod P), so a
dataset is the same whatever the number of ranks; see :mod:`fem_ms.data.store` for how samples
are stored and merged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .config import (
    BurgersConfig,
    CylinderFlowConfig,
    DarcyNotchConfig,
    GMsFEMBasisConfig,
    MultilevelConfig,
    NavierStokesForcingConfig,
    NavierStokesTorusConfig,
    WaveAdvectionConfig,
    load_config,
)
from .store import ShardStore, generation_lock

__all__ = ["generate", "sampler_class", "multilevel_space"]

logger = logging.getLogger(__name__)


def generate(config, out_dir=".", overwrite: bool = False, comm=None, progress: bool = True,
             max_new_samples: int | None = None) -> Path | None:
    """Generate the dataset ``config`` describes into ``out_dir/NAME.h5``.

    Parameters
    ----------
    config : config object, dict or path to a .toml/.json file
    out_dir : path
    overwrite : bool
        Replace a dataset (or unfinished shards) made with a different config, or a dataset of
        an older format version.
    comm : mpi4py communicator, optional
        Ranks to spread the samples over (default: COMM_WORLD).
    progress : bool
        Progress bar (rank 0) with samples/s and ETA.
    max_new_samples : int, optional
        Stop after this many new samples on each rank without merging (an interruption, for
        tests and for splitting long runs); rerun to continue.

    Returns
    -------
    pathlib.Path or None
        The dataset file, or None if stopped early.
    """
    import firedrake  # noqa: F401  (initialises PETSc before PyOP2 does)
    from pyop2.mpi import COMM_WORLD

    comm = COMM_WORLD if comm is None else comm
    if not hasattr(config, "kind"):
        config = load_config(config)
    out_dir = Path(out_dir)
    if comm.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    path = out_dir / f"{config.name}.h5"
    # rank 0 holds the lock from the shard directory's set-up to the merge; the others follow it
    with generation_lock(path) if comm.rank == 0 else contextlib.nullcontext():
        return _generate(config, path, overwrite, comm, progress, max_new_samples)


def _generate(config, path: Path, overwrite: bool, comm, progress: bool, max_new_samples: int | None) -> Path | None:
    make_sampler = sampler_class(config.kind)  # before the store: a kind without its plugin leaves no shards
    store = ShardStore(path, config, overwrite, comm)
    if store.finished:
        return store.path
    sampler = make_sampler(config)
    mine = range(comm.rank, config.samples, comm.size)
    todo = [s for s in mine if not store.done(s)]
    if max_new_samples is not None:
        todo = todo[:max_new_samples]
    show = progress and comm.rank == 0
    # rank 0's bar counts the samples of every rank (the shards in the shared directory) out of all
    # samples, starting at those earlier runs finished
    ranks = f" ({comm.size} ranks)" if comm.size > 1 else ""
    with tqdm(total=config.samples, initial=store.count_done(), unit="sample", disable=not show,
              desc=f"{config.kind} {config.name}{ranks}") as bar:
        for s in todo:
            store.write(s, sampler.sample(s))
            if show:
                bar.update(store.count_done() - bar.n)
        finished = comm.Ibarrier()  # every rank's share written
        while show and not finished.Test():  # the others' samples keep the bar moving meanwhile
            time.sleep(0.5)
            bar.update(store.count_done() - bar.n)
        finished.Wait()
    if max_new_samples is not None and not all(store.done(s) for s in range(config.samples)):
        return None
    merged = None
    if comm.rank == 0:
        merged = store.merge(sampler.shared(), _attrs(config, sampler), progress=show)
    return Path(comm.bcast(str(merged) if merged else None))


def _attrs(config, sampler) -> dict:
    """Provenance of the file; :func:`fem_ms.data.schema.write_header` adds the rest."""
    from firedrake.petsc import PETSc
    from slepc4py import SLEPc

    import fem_ms

    return {"fem_ms_version": fem_ms.__version__,
            "petsc_version": ".".join(map(str, PETSc.Sys.getVersion())),
            "slepc_version": ".".join(map(str, SLEPc.Sys.getVersion())),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "mesh": sampler.mesh_description,
            "seeds": getattr(sampler, "seeds_description",
                             "sample s: kappa from seed + 2s, forcing from seed + 2s + 1")}


def _key(path: str) -> str:
    """HDF5 paths are stored in .npz shards with '.' for '/'."""
    return path.replace("/", ".")


class _GMsFEMBasisSampler:
    """κ patches and SLEPc bases per neighbourhood kind, on canonical patch grids."""

    def __init__(self, config: GMsFEMBasisConfig):
        import firedrake as fd
        from pyop2.mpi import COMM_SELF

        from ..coefficients import paper_kle
        from ..gmsfem import SpaceLayout, SpectralBasisProvider
        from ..meshes import structured_hierarchy

        self.config = config
        self.pair = structured_hierarchy(config.coarse, config.fine, dim=config.dim, quadrilateral=True,
                                         comm=COMM_SELF)
        self.V = fd.FunctionSpace(self.pair.fine, "CG", 1)
        self.kle = paper_kle((config.fine,) * config.dim, energy=config.energy, convention=config.convention)
        self.mesh_description = (f"unit {'square' if config.dim == 2 else 'cube'}, Q1, {config.fine}^{config.dim} "
                                 f"fine cells nested in {config.coarse}^{config.dim} coarse cells")
        self.provider = SpectralBasisProvider(progress=False)
        # the local problems are Neumann problems on each ω_i: no boundary condition enters them
        self.layout = SpaceLayout.of(self.pair, self.V, [])
        self._shared = None

    def _patches(self, s: int):
        from ..coefficients import cell_field
        from ..gmsfem import PatchSet

        kappa = cell_field(self.pair.fine, self.kle.sample_kappa(self.config.kappa_seed(s),
                                                                  **self.config.kappa_options()))
        return PatchSet(self.layout, range(len(self.layout.neighbourhoods)), kappa, self.V)

    def sample(self, s: int) -> dict:
        patches = self._patches(s)
        bases = self.provider.local_bases(patches, self.config.n_basis)
        by_kind: dict[str, dict[str, list]] = {}
        for nbh in patches.neighbourhoods:
            kp = patches.kappa_patch(nbh.index)
            grid = np.zeros((self.config.n_basis,) + tuple(n + 1 for n in kp.shape))
            grid[(slice(None),) + patches.grid_positions(nbh.index)] = bases.vectors[nbh.index].T
            d = by_kind.setdefault(nbh.kind, {"kappa": [], "basis": [], "eigenvalues": []})
            d["kappa"].append(kp)
            d["basis"].append(grid)
            d["eigenvalues"].append(bases.eigenvalues[nbh.index])
        if self._shared is None:
            self._shared = self._geometry(patches)
        out = {"kappa_seed": np.int64(self.config.kappa_seed(s))}
        for kind, d in by_kind.items():
            for name, values in d.items():
                out[_key(f"{kind}/{name}")] = np.stack(values)
        return out

    def _geometry(self, patches) -> dict:
        out: dict[str, list] = {}
        for nbh in patches.neighbourhoods:
            perm, flips = patches.canonical_transform(nbh.index)
            chi = np.zeros(tuple(n + 1 for n in patches.kappa_patch(nbh.index).shape))
            chi[patches.grid_positions(nbh.index)] = nbh.chi
            for name, value in (("vertex_index", nbh.index), ("vertex", nbh.vertex), ("perm", perm),
                                ("flips", flips), ("chi", chi)):
                out.setdefault(f"{nbh.kind}/{name}", []).append(np.asarray(value))
        return {k: np.stack(v) for k, v in out.items()}

    def shared(self) -> dict:
        if self._shared is None:  # rank 0 computed no sample this run (all were resumed)
            self._shared = self._geometry(self._patches(0))
        return self._shared


def multilevel_space(n: int):
    """The fine space of a ``multilevel`` dataset level with ``n`` cells per side: Q1 on the unit
    square, on one process (the generator solves each sample on one rank), so that a reader can
    rebuild the space its grids live on."""
    import firedrake as fd
    from pyop2.mpi import COMM_SELF

    return fd.FunctionSpace(fd.UnitSquareMesh(n, n, quadrilateral=True, comm=COMM_SELF), "CG", 1)


class _MultilevelSampler:
    """The same κ (finest grid) and forcing, solved on every level of a nested hierarchy."""

    def __init__(self, config: MultilevelConfig):
        from ..coefficients import paper_forcing, paper_kle

        self.config = config
        finest = config.levels[-1]
        self.kle = paper_kle((finest, finest), energy=config.energy, convention=config.convention)
        self.forcing = paper_forcing((finest, finest), convention=config.convention)
        self.spaces = {}
        for n in config.levels:
            self.spaces[n] = multilevel_space(n)
        self.mesh_description = (f"unit square, Q1, nested levels {list(config.levels)} cells per side; "
                                 "coarse kappa = geometric mean over the finest cells inside; coarse f = "
                                 "finest f at the coarse vertices")

    def sample(self, s: int) -> dict:
        from ..coefficients import block_geometric_mean, cell_field, vertex_field, vertex_grid_indices
        from ..problems import make_problem
        from ..solvers import solve

        cfg = self.config
        finest = cfg.levels[-1]
        kappa = self.kle.sample_kappa(cfg.kappa_seed(s), **cfg.kappa_options())
        f = self.forcing.sample(cfg.forcing_seed(s)) if cfg.forcing == "random" else None
        out = {"kappa_seed": np.int64(cfg.kappa_seed(s))}
        for n in cfg.levels:
            r = finest // n
            k_n = block_geometric_mean(kappa, r)
            V = self.spaces[n]
            f_n = 1.0 if f is None else vertex_field(V, f[::r, ::r])
            u = solve(make_problem(cfg.problem, V, cell_field(V.mesh(), k_n), f_n)).u
            grid = np.zeros((n + 1, n + 1))
            grid[vertex_grid_indices(V, (n, n))] = u.dat.data_ro_with_halos
            out[_key(f"level_{n}/kappa")] = k_n
            out[_key(f"level_{n}/u")] = grid
            if f is not None:
                out[_key(f"level_{n}/f")] = f[::r, ::r]
        return out

    def shared(self) -> dict:
        return {f"level_{n}/x": np.linspace(0.0, 1.0, n + 1) for n in self.config.levels}


class _CylinderFlowSampler:
    """One random inlet profile per sample, simulated on each requested cylinder mesh."""

    def __init__(self, config: CylinderFlowConfig):
        from pyop2.mpi import COMM_SELF

        from ..geometries import geo_file
        from ..meshes import mesh_from_geo
        from ..navier_stokes import CylinderFlow

        self.config = config
        self.flows = {}
        for k in config.meshes:
            with geo_file(f"cylinder_M{k}.geo") as path:
                mesh = mesh_from_geo(path, comm=COMM_SELF)
            self.flows[k] = CylinderFlow(mesh, config.reynolds, config.dt, config.t_end, config.save_every)
        sizes = ", ".join(f"M{k}: {len(f.coordinates)} nodes" for k, f in self.flows.items())
        self.mesh_description = (f"channel [-4, 12] x [-4, 4], cylinder of diameter 1 at the origin, Gmsh "
                                 f"fem_ms/geometries/cylinder_M*.geo ({sizes}); Taylor-Hood P2/P1, Crank-Nicolson; "
                                 "velocity and pressure stored at the P1 nodes")

    def inflow(self, s: int) -> np.ndarray:
        rng = np.random.default_rng(self.config.forcing_seed(s))
        k = np.arange(1, self.config.inflow_modes + 1)
        return self.config.inflow_amplitude / k * rng.standard_normal(len(k))

    def sample(self, s: int) -> dict:
        c = self.inflow(s)
        out = {"inflow_coefficients": c}
        for k, flow in self.flows.items():
            times, u, p = flow.run(c)
            out[_key(f"mesh_{k}/velocity")] = u
            out[_key(f"mesh_{k}/pressure")] = p
        return out

    def shared(self) -> dict:
        from ..navier_stokes import mesh_edges

        out = {}
        for k, flow in self.flows.items():
            cells = flow.cells
            out[f"mesh_{k}/coordinates"] = flow.coordinates
            out[f"mesh_{k}/cells"] = cells
            out[f"mesh_{k}/edges"] = mesh_edges(cells)
        first = next(iter(self.flows.values()))
        out["times"] = first.dt * first.save_every * np.arange(1, first.n_steps // first.save_every + 1)
        return out


class _DarcyNotchSampler:
    """Boundary data g ~ GP on the notched triangle → pressure u at the nodes and on a grid."""

    def __init__(self, config: DarcyNotchConfig):
        import firedrake as fd
        from pyop2.mpi import COMM_SELF

        from ..geometries import geo_file
        from ..meshes import mesh_from_geo

        self.config = config
        with geo_file("notched_triangle.geo") as path:
            self.mesh = mesh_from_geo(path, mesh_size=config.mesh_size, comm=COMM_SELF)
        self.V = fd.FunctionSpace(self.mesh, "CG", 1)
        self.kappa = fd.Function(fd.FunctionSpace(self.mesh, "DG", 0)).assign(config.permeability)
        self.xy = fd.Function(fd.VectorFunctionSpace(self.mesh, "CG", 1)).interpolate(
            fd.SpatialCoordinate(self.mesh)).dat.data_ro.copy()
        self.boundary = np.sort(fd.DirichletBC(self.V, 0.0, "on_boundary").nodes)
        xb = self.xy[self.boundary]
        d2 = ((xb[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
        K = np.exp(-d2 / (2 * config.length_scale**2))
        # jitter: the squared-exponential kernel matrix is numerically singular at this spacing
        self.chol = np.linalg.cholesky(K + 1e-8 * np.eye(len(K)))
        g = np.linspace(0.0, 1.0, config.grid)
        self.grid_points = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        cells, _, _ = self.mesh.locate_cells_ref_coords_and_dists(self.grid_points, tolerance=1e-10)
        self.inside = cells >= 0
        self.evaluator = fd.PointEvaluator(self.mesh, self.grid_points[self.inside], tolerance=1e-10)
        self.mesh_description = (f"notched triangle (0,0), (1,0), (0.5,1) with the notch [0.45, 0.55] x [0, 0.4] "
                                 f"(fem_ms/geometries/notched_triangle.geo), P1, {len(self.xy)} nodes; grid "
                                 f"{config.grid}x{config.grid} on [0,1]^2, NaN outside the domain")

    def sample(self, s: int) -> dict:
        import firedrake as fd

        from ..problems import Diffusion, DirichletBoundary
        from ..solvers import solve

        rng = np.random.default_rng(self.config.forcing_seed(s))
        gb = self.chol @ rng.standard_normal(len(self.boundary))
        g = fd.Function(self.V)
        g.dat.data[self.boundary] = gb
        u = solve(Diffusion(self.V, self.kappa, self.config.source, DirichletBoundary(g))).u
        grid = np.full(len(self.grid_points), np.nan)
        grid[self.inside] = np.asarray(self.evaluator.evaluate(u))
        return {"boundary_values": gb, "pressure": u.dat.data_ro.copy(),
                "pressure_grid": grid.reshape(self.config.grid, self.config.grid)}

    def shared(self) -> dict:
        return {"coordinates": self.xy, "cells": self.V.cell_node_map().values.copy(),
                "boundary_nodes": self.boundary, "grid_inside": self.inside.reshape(self.config.grid, -1),
                "grid_x": np.linspace(0.0, 1.0, self.config.grid)}


class _BurgersSampler:
    """GRF initial condition → Burgers solution at t_end, pseudo-spectral ETDRK4 (numpy)."""

    def __init__(self, config: BurgersConfig):
        from ..burgers import BurgersSolver

        self.config = config
        self.solver = BurgersSolver(config.points, config.viscosity, config.dt)
        self.mesh_description = (f"periodic unit interval, {config.points} points x_j = j/{config.points}; "
                                 f"Fourier pseudo-spectral (2/3 dealiasing), ETDRK4, dt = {config.dt}")

    def sample(self, s: int) -> dict:
        from ..burgers import grf_initial_condition

        cfg = self.config
        u0 = grf_initial_condition(cfg.points, np.random.default_rng(cfg.kappa_seed(s)), cfg.sigma, cfg.tau,
                                   cfg.gamma)
        return {"u0": u0, "u": self.solver.solve(u0, cfg.t_end)}

    def shared(self) -> dict:
        return {"x": self.solver.x}


class _WaveAdvectionSampler:
    """Random square wave + parabolic bump → its exact transport to t_end (a closed formula)."""

    def __init__(self, config: WaveAdvectionConfig):
        self.config = config
        self.x = np.arange(config.points) / config.points
        self.mesh_description = (f"periodic unit interval, {config.points} points x_j = j/{config.points}; exact "
                                 f"solution u_0(x - {config.speed} t) evaluated at the shifted points")

    def sample(self, s: int) -> dict:
        from ..wave_advection import advected_wave, random_wave_parameters, square_parabolic_wave

        cfg = self.config
        c, w, h = random_wave_parameters(np.random.default_rng(cfg.kappa_seed(s)), cfg.center, cfg.width,
                                         cfg.height)
        return {"u0": square_parabolic_wave(self.x, c, w, h, cfg.sharpness),
                "u": advected_wave(self.x, cfg.t_end, cfg.speed, c, w, h, cfg.sharpness),
                "parameters": np.array([c, w, h])}

    def shared(self) -> dict:
        return {"x": self.x}


class _NavierStokesTorusSampler:
    """w_0 ~ the MLMC paper's GRF → the vorticity trajectory, solved once and subsampled per level."""

    def __init__(self, config: NavierStokesTorusConfig):
        from ..torus_vorticity import mlmc_forcing

        self.config = config
        self.forcing = mlmc_forcing(config.resolution)
        self.times = config.times()
        self.mesh_description = (f"unit torus [0,1)^2, {config.resolution}^2 grid (i/n, j/n); Fourier pseudo-spectral "
                                 f"(2/3 rule), Crank-Nicolson + AB2, dt = {config.dt}; stored levels "
                                 f"{list(config.levels)} subsample the solve grid")
        self.seeds_description = "sample s: w_0 from seed + 2s"

    def sample(self, s: int) -> dict:
        from ..torus_vorticity import downsample, periodic_grf, solve_vorticity

        cfg = self.config
        w0 = periodic_grf(cfg.resolution, cfg.kappa_seed(s), cfg.alpha, cfg.tau)
        w = solve_vorticity(w0, self.forcing, cfg.viscosity, self.times, cfg.dt)
        out = {"initial_seed": np.int64(cfg.kappa_seed(s))}
        for n in cfg.levels:
            out[_key(f"level_{n}/w")] = downsample(w, n)
        return out

    def shared(self) -> dict:
        from ..torus_vorticity import downsample

        out = {"times": self.times}
        for n in self.config.levels:
            out[f"level_{n}/f"] = downsample(self.forcing, n)
            out[f"level_{n}/x"] = np.arange(n) / n
        return out


class _NavierStokesForcingSampler:
    """A random forcing → the vorticity at t_end from the one fixed w_0 (LoGoS-GPO's case)."""

    def __init__(self, config: NavierStokesForcingConfig):
        from ..torus_vorticity import GPO_LENGTH, random_forcing

        self.config = config
        self.length = GPO_LENGTH
        self.w0 = random_forcing(config.resolution, config.initial_seed, sigma=config.forcing_sigma)
        self.mesh_description = (f"periodic square [0,2pi)^2, {config.resolution}^2 grid (2pi i/n, 2pi j/n); Fourier "
                                 f"pseudo-spectral (2/3 rule), Crank-Nicolson + AB2, dt = {config.dt}; stored levels "
                                 f"{list(config.levels)} subsample the solve grid")
        self.seeds_description = (f"sample s: forcing from seed + 2s + 1; the initial vorticity (all samples) from "
                                  f"initial_seed = {config.initial_seed}")

    def sample(self, s: int) -> dict:
        from ..torus_vorticity import downsample, random_forcing, solve_vorticity

        cfg = self.config
        f = random_forcing(cfg.resolution, cfg.forcing_seed(s), sigma=cfg.forcing_sigma)
        w = solve_vorticity(self.w0, f, cfg.viscosity, [cfg.t_end], cfg.dt, length=self.length)[0]
        out = {"forcing_seed": np.int64(cfg.forcing_seed(s))}
        for n in cfg.levels:
            out[_key(f"level_{n}/f")] = downsample(f, n)
            out[_key(f"level_{n}/w")] = downsample(w, n)
        return out

    def shared(self) -> dict:
        from ..torus_vorticity import downsample

        out = {}
        for n in self.config.levels:
            out[f"level_{n}/w0"] = downsample(self.w0, n)
            out[f"level_{n}/x"] = self.length * np.arange(n) / n
        return out


def sampler_class(kind: str):
    """The sampler of dataset kind ``kind``: the core's, or the class a plugin registers under the
    ``fem_ms.dataset_samplers`` entry point named like the kind (a kind whose solver needs torch)."""
    from ..plugins import DATASET_SAMPLERS, registered

    if kind in _SAMPLERS:
        return _SAMPLERS[kind]
    for entry_point in registered(DATASET_SAMPLERS):
        if entry_point.name == kind:
            return entry_point.load()
    raise ValueError(f"no sampler for dataset kind {kind!r}: the core samples {sorted(_SAMPLERS)}, and no plugin "
                     f"registers {kind!r} under the {DATASET_SAMPLERS!r} entry points (the shallow water sampler "
                     "is fem-ms-torch's: install the plugin)")


_SAMPLERS = {GMsFEMBasisConfig.kind: _GMsFEMBasisSampler, MultilevelConfig.kind: _MultilevelSampler,
             CylinderFlowConfig.kind: _CylinderFlowSampler, DarcyNotchConfig.kind: _DarcyNotchSampler,
             BurgersConfig.kind: _BurgersSampler, WaveAdvectionConfig.kind: _WaveAdvectionSampler,
             NavierStokesTorusConfig.kind: _NavierStokesTorusSampler,
             NavierStokesForcingConfig.kind: _NavierStokesForcingSampler}
