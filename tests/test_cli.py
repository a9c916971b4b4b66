"""The fem-ms command line through a subprocess, as a user runs it: one-line errors with exit status
2 (usage) or 1 (failure), --traceback, PETSc options passed through, output from rank 0 only."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FEM_MS = [sys.executable, "-m", "fem_ms.cli"]
SMALL = ["--fine", "12", "--coarse", "3"]


def run(*args, mpi: int = 0, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [*FEM_MS, *args]
    if mpi:
        command = ["mpiexec", "-n", str(mpi), *command]
    # env: Python's copy of the environment, without what MPI_Init set in this (singleton) process's C
    # environment: an mpiexec started with those variables exits 1 without a word
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=dict(os.environ))


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("fem-ms")]


def test_names_match_the_library():
    from fem_ms.cli import PROBLEM_NAMES, SOLVER_NAMES
    from fem_ms.problems import PROBLEMS
    from fem_ms.solvers import SOLVER_PRESETS

    assert set(PROBLEM_NAMES) == set(PROBLEMS)
    assert set(SOLVER_NAMES) == set(SOLVER_PRESETS)


def test_version_and_info():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("fem-ms ")
    import json

    proc = run("info")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert "slepc" in facts["basis_providers"] and "gmsfem_basis" in facts["dataset_kinds"]
    assert {"installed", "version"} <= set(facts["torch"]) or facts["torch"] == {"installed": False}
    assert facts["environment"]["prefix"]


@pytest.mark.parametrize("args, status, message", [
    (["solve", "--problem", "stokes"], 2, "argument --problem: invalid choice: 'stokes'"),
    (["solve", "--solver", "lu"], 2, "argument --solver: invalid choice: 'lu'"),
    (["solve", "--basis", "nope", "--n-basis", "2"], 2, "argument --basis: invalid choice: 'nope'"),
    (["solve", "-fine", "12"], 2, "-fine is fem-ms's own option: write --fine"),
    (["solve", "--fine", "12", "--coarse", "5"], 2, "fine_cells=12 is not a multiple of coarse_cells=5"),
    (["solve", "--fine", "12", "--coarse", "12", "--n-basis", "4"], 2, "DegenerateSpaceError: neighbourhood 0"),
    (["solve", *SMALL, "--checkpoint", "x.pt"], 2, "give --n-basis too"),
    (["solve", *SMALL, "--n-basis", "2", "--provider-option", "progress"], 2, "expected KEY=VALUE"),
    (["generate", "no-such-config.toml"], 2, "config file not found: no-such-config.toml"),
    (["nope"], 2, "argument command: invalid choice: 'nope'"),
    (["solve", *SMALL, "--solver", "cg-gamg", "-ksp_max_it", "1"], 1,
     "ConvergenceError: the linear solve of diffusion failed: KSPSolve() has not converged, reason DIVERGED_ITS"),
])
def test_errors_are_one_line_with_the_exit_status(args, status, message):
    proc = run(*args)
    lines = error_lines(proc)
    assert proc.returncode == status, proc.stderr
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_config_values_name_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('kind = "multilevel"\nname = "x"\nsamples = 2\nlevels = [4, 8]\nenergy = "high"\n')
    proc = run("generate", str(config), "--out-dir", str(tmp_path))
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "energy" in proc.stderr, proc.stderr
    config.write_text('kind = "multilevel"\nname = "x"\nsamples = 2\nlevels = [4, 8]\nenergie = 0.9\n')
    proc = run("generate", str(config), "--out-dir", str(tmp_path))
    assert proc.returncode == 2 and "unknown key 'energie' (did you mean 'energy'?)" in proc.stderr, proc.stderr


def test_traceback_on_request():
    proc = run("--traceback", "solve", "--fine", "12", "--coarse", "5")
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr
    assert "fine_cells=12 is not a multiple" in proc.stderr


def test_petsc_options_pass_through_and_unused_ones_are_named():
    proc = run("solve", *SMALL, "--n-basis", "2", "-ksp_monitor", "-gmsfem_eps_tol", "1e-12", "-ksp_monitr")
    assert proc.returncode == 0, proc.stderr
    assert "KSP Residual norm" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "did not use" in line]
    assert len(warnings) == 1 and "-ksp_monitr" in warnings[0] and "eps_tol" not in warnings[0]


def test_quiet_shows_no_progress_bars():
    loud = run("solve", *SMALL, "--n-basis", "2")
    quiet = run("-q", "solve", *SMALL, "--n-basis", "2")
    assert "GMsFEM local eigenproblems" in loud.stderr and "GMsFEM local eigenproblems" not in quiet.stderr
    assert quiet.returncode == 0 and "relative L2" in quiet.stdout


def test_interrupt_is_one_line_and_status_130(tmp_path):
    config = tmp_path / "long.toml"
    config.write_text('kind = "multilevel"\nname = "long"\nsamples = 2000\nlevels = [8, 16]\n')
    proc = subprocess.Popen([*FEM_MS, "generate", str(config), "--out-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "long.h5.parts"
    deadline = time.time() + 120
    while not (parts.exists() and any(parts.glob("sample_*.npz"))) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert error_lines(subprocess.CompletedProcess([], 0, "", stderr)) == [
        "fem-ms: interrupted (datasets and training runs resume when the same command is run again)"]


def test_two_ranks_print_once_with_global_figures(tmp_path):
    serial = run("solve", *SMALL, "--n-basis", "2")
    parallel = run("solve", *SMALL, "--n-basis", "2", "--out", str(tmp_path / "u.vtu"), mpi=2)
    assert parallel.returncode == 0, parallel.stderr
    def lines(proc, start):
        return [line for line in proc.stdout.splitlines() if line.startswith(start)]
    assert len(lines(parallel, "diffusion:")) == 1 and len(lines(parallel, "GMsFEM")) == 1
    max_u = [line.split("max u = ")[1].split(",")[0] for line in (lines(serial, "diffusion:")[0],
                                                                   lines(parallel, "diffusion:")[0])]
    assert max_u[0] == max_u[1]
    assert lines(serial, "GMsFEM")[0].split("%")[0] == lines(parallel, "GMsFEM")[0].split("%")[0]
    assert f"wrote {tmp_path / 'u.vtu'} (gathered from 2 ranks)" in parallel.stdout
    import meshio

    ours = meshio.read(tmp_path / "u.vtu")
    run("solve", *SMALL, "--n-basis", "2", "--out", str(tmp_path / "serial.vtu"))
    reference = meshio.read(tmp_path / "serial.vtu")
    assert len(ours.points) == len(reference.points) == 13 * 13
    for name in ("u", "u_gmsfem"):  # the same values at the same points, in whatever order
        a = sorted(zip(map(tuple, ours.points.round(12)), ours.point_data[name].round(12)))
        b = sorted(zip(map(tuple, reference.points.round(12)), reference.point_data[name].round(12)))
        assert a == b, name


def test_basis_options_reach_the_provider():
    proc = run("solve", *SMALL, "--n-basis", "2", "--provider-option", "eps_options={eps_tpye = \"lapack\"}")
    assert proc.returncode == 2 and "gmsfem_eps_tpye (did you mean gmsfem_eps_type?)" in proc.stderr, proc.stderr


def test_heat_to_xdmf_writes_the_time_series(tmp_path):
    """`--problem heat --out u.xdmf`: every backward Euler step in one XDMF time series (meshio
    reads it back), the final state with the GMsFEM solution too."""
    import meshio
    import numpy as np

    proc = run("-q", "solve", *SMALL, "--problem", "heat", "--n-basis", "2", "--out", str(tmp_path / "u.xdmf"))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'u.xdmf'}" in proc.stdout
    with meshio.xdmf.TimeSeriesReader(tmp_path / "u.xdmf") as reader:
        points, _ = reader.read_points_cells()
        steps = [reader.read_data(k) for k in range(reader.num_steps)]
    assert len(points) == 13 * 13 and len(steps) == 201  # t = 0 and the 200 steps of dt = 2.5e-6
    times = np.array([t for t, _, _ in steps])
    np.testing.assert_allclose(times, 2.5e-6 * np.arange(201), rtol=1e-12, atol=1e-18)
    assert all(set(p) == {"u"} and set(c) == {"kappa"} for _, p, c in steps[:-1])
    assert set(steps[-1][1]) == {"u", "u_gmsfem"}
    max_u = float(proc.stdout.split("max u = ")[1].split(",")[0])
    assert steps[0][1]["u"].max() == 0 and steps[-1][1]["u"].max() == pytest.approx(max_u, rel=1e-5)
    assert np.all(np.diff([p["u"].max() for _, p, _ in steps]) > 0)  # heating up from u = 0 under f = 1


def test_the_common_provider_options_reach_the_provider():
    # exact eigenpairs have an indicator ~1e-11: a tolerance below it flags every neighbourhood
    proc = run("solve", *SMALL, "--n-basis", "2", "--provider-option", 'verify="warn"',
               "--provider-option", "tolerance=1e-300")
    assert proc.returncode == 0, proc.stderr
    assert "basis provider 'slepc': the local bases of 16 of 16 neighbourhoods fail the a-posteriori check" \
        in proc.stderr
    proc = run("solve", *SMALL, "--n-basis", "2", "--provider-option", 'verify="sometimes"')
    assert proc.returncode == 2 and "verify must be one of ('off', 'warn', 'refine', 'fallback')" in proc.stderr, \
        proc.stderr


CONFIGS = Path(__file__).resolve().parent.parent / "demos" / "configs"


def test_generate_print_config_applies_samples_and_set():
    import tomllib

    from fem_ms.data import load_config

    example = CONFIGS / "multilevel_darcy.toml"
    proc = run("generate", str(example), "--samples", "3", "--set", "levels=[4, 8]", "--set", "forcing=random",
               "--set", "contrast=100", "--print-config")
    assert proc.returncode == 0 and not error_lines(proc), proc.stderr
    printed = tomllib.loads(proc.stdout)
    assert proc.stdout.startswith('kind = "multilevel"\n')
    assert (printed["samples"], printed["levels"], printed["forcing"], printed["contrast"]) == (3, [4, 8], "random",
                                                                                               100.0)
    assert printed["validation_fraction"] == 0.1 and printed["storage_dtype"] == "float64"  # file and defaults
    assert load_config(printed) == load_config(example, {"samples": 3, "levels": [4, 8], "forcing": "random",
                                                         "contrast": 100})


@pytest.mark.parametrize("args, message", [
    (["--set", "energie=0.9"], "with energie = 0.9: config of kind 'multilevel': unknown key 'energie' "
                               "(did you mean 'energy'?)"),
    (["--set", "energy=high"], "key 'energy' must be a number, got 'high' (str)"),
    (["--samples", "0"], "samples must be a positive integer, got 0"),
    (["--set", "samples"], "--set 'samples': expected KEY=VALUE"),
])
def test_generate_overrides_are_checked_like_the_file(args, message):
    proc = run("generate", str(CONFIGS / "multilevel_darcy.toml"), *args, "--print-config")
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def test_generate_samples_sets_the_count(tmp_path):
    import h5py

    proc = run("-q", "generate", str(CONFIGS / "tiny" / "burgers.toml"), "--samples", "4", "--out-dir", str(tmp_path))
    assert proc.returncode == 0 and "(4 samples of 'burgers')" in proc.stdout, proc.stderr
    with h5py.File(tmp_path / "tiny_burgers.h5") as fh:
        assert fh["u"].shape[0] == 4


def test_every_dataset_kind_has_a_tiny_config():
    from fem_ms.data import load_config
    from fem_ms.data.config import CONFIG_KINDS

    assert sorted(load_config(path).kind for path in (CONFIGS / "tiny").glob("*.toml")) == sorted(CONFIG_KINDS)


# kinds whose sampler is the torch plugin's (fem_ms.dataset_samplers): generated where torch is
PLUGIN_KINDS = ("shallow_water_sphere",)


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.torch) if name in PLUGIN_KINDS else name
                                  for name in sorted(path.stem for path in (CONFIGS / "tiny").glob("*.toml"))])
def test_the_tiny_configs_generate(tmp_path, name):
    from fem_ms.data import DatasetFile, load_config

    config = CONFIGS / "tiny" / f"{name}.toml"
    proc = run("-q", "generate", str(config), "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / f"{load_config(config).name}.h5"
    assert proc.stdout.strip() == f"wrote {path} ({load_config(config).samples} samples of {name!r})"
    DatasetFile(path).verify()


def test_generate_progress_counts_every_rank_from_the_resumed_count(tmp_path):
    import re

    from fem_ms.data import generate, load_config

    config = CONFIGS / "tiny" / "multilevel.toml"
    # a first run "killed" after one sample
    assert generate(load_config(config), tmp_path, progress=False, max_new_samples=1) is None
    proc = run("generate", str(config), "--out-dir", str(tmp_path), mpi=2)
    assert proc.returncode == 0, proc.stderr
    frames = re.findall(r"multilevel tiny_multilevel \(2 ranks\):\s+\d+%.*?\| (\d+)/(\d+) ", proc.stderr)
    # out of all 6 samples (not rank 0's 3), from the one done before (more if the other rank was quick)
    assert frames and {total for _, total in frames} == {"6"}, proc.stderr
    assert int(frames[0][0]) >= 1 and frames[-1][0] == "6", frames
    assert re.search(r"merging tiny_multilevel.h5: 100%.*\| 6/6 ", proc.stderr), proc.stderr
