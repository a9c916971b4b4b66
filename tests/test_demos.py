"""Demos double as tests: each runs small and checks what it prints and writes."""

import importlib.util
import subprocess
import sys

import pytest


def test_fine_solve_demo(repo, tmp_path):
    # PETSc's options among the demo's own reach the solves
    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "fine_solve.py"), "--fine", "24", "-snes_monitor", "--out-dir",
         str(tmp_path)], check=True, capture_output=True, text=True).stdout
    assert "SNES Function norm" in out  # Richards' Newton iterations
    assert "kappa in [1, 9600]" in out
    assert "richards" in out and "rel. L2 %" in out
    assert (tmp_path / "fine_solve.png").stat().st_size > 10_000
    assert (tmp_path / "fine_solve.vtu").is_file()


def test_gmsfem_basics_demo(repo, tmp_path):
    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "gmsfem_basics.py"), "--fine", "20", "--coarse", "2", "-ksp_monitor",
         "--out-dir", str(tmp_path)], check=True, capture_output=True, text=True).stdout
    assert "KSP Residual norm" in out  # the fine solve read -ksp_monitor
    lines = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit() and "KSP" not in l]
    l2 = [float(l[2]) for l in lines]
    assert [int(l[0]) for l in lines] == [1, 2, 4, 8, 12]
    assert all(a > b for a, b in zip(l2, l2[1:])), out  # errors fall as N_bf grows
    assert (tmp_path / "gmsfem_basics.png").stat().st_size > 10_000


@pytest.mark.torch  # the demo trains an F-FNO
def test_learned_basis_demo(repo, tmp_path):
    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "learned_basis.py"), "--fine", "12", "--coarse", "3", "--n-basis", "3",
         "--samples", "3", "--epochs", "2", "--width", "4", "--out-dir", str(tmp_path)],
        check=True, capture_output=True, text=True).stdout
    # a row: problem, basis, L2 %, H1 %, offline s, then the verification's summary where there is one
    rows = {}
    for line in out.splitlines():
        tokens = line.split()
        for basis in {"slepc", "learned"} & set(tokens):
            at = tokens.index(basis)
            rows.setdefault(basis, []).append((tokens[at + 1:at + 4], " ".join(tokens[at + 4:])))
    assert sorted(map(len, rows.values())) == [2, 2]  # two problems, each by SLEPc and the verified network
    assert all(float(figure) >= 0 for entries in rows.values() for figures, _ in entries for figure in figures)
    # SLEPc's exact eigenpairs pass their own check
    assert all(", tolerance 0.2): 0 flagged," in summary for _, summary in rows["slepc"])
    assert (tmp_path / "learned_basis.png").stat().st_size > 10_000


def test_a_single_dash_spelling_of_a_demo_option_is_refused(repo):
    proc = subprocess.run([sys.executable, str(repo / "demos" / "fine_solve.py"), "-fine", "24"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "-fine is fine_solve.py's own option: write --fine" in proc.stderr, proc.stderr


def _figures(repo, monkeypatch, demo: str, args: list[str]) -> list:
    """The figures the demo saves, run in this process (its main with ``args``)."""
    from matplotlib.figure import Figure

    spec = importlib.util.spec_from_file_location(f"demo_{demo}", repo / "demos" / f"{demo}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: saved.append(self))
    monkeypatch.setattr(sys, "argv", [demo])  # the demo hands PETSc sys.argv's PETSc options
    module.main(args)
    return saved


@pytest.mark.parametrize("demo, args", [("fine_solve", ["--fine", "24"]),
                                        ("gmsfem_basics", ["--fine", "20", "--coarse", "2"])])
def test_diverging_colour_maps_are_centred_at_zero(repo, tmp_path, monkeypatch, demo, args):
    """A difference map (and a signed basis function) in a diverging colour map shows zero as
    the map's middle colour: its colour limits are symmetric."""
    (figure,) = _figures(repo, monkeypatch, demo, [*args, "--out-dir", str(tmp_path)])
    diverging = [artist for ax in figure.axes for artist in ax.collections
                 if artist.get_cmap().name in ("RdBu_r", "coolwarm")]
    assert diverging
    for artist in diverging:
        low, high = artist.get_clim()
        assert high > 0 and low == pytest.approx(-high, rel=1e-12), (artist.get_cmap().name, low, high)
