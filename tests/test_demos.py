"""Demos double as tests: each runs small and checks what it prints and writes."""

import subprocess
import sys

import pytest


def test_fine_solve_demo(repo, tmp_path):
    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "fine_solve.py"), "--fine", "24", "--out-dir", str(tmp_path)],
        check=True, capture_output=True, text=True).stdout
    assert "kappa in [1, 9600]" in out
    assert "richards" in out and "rel. L2 %" in out
    assert (tmp_path / "fine_solve.png").stat().st_size > 10_000
    assert (tmp_path / "fine_solve.vtu").is_file()


def test_gmsfem_basics_demo(repo, tmp_path):
    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "gmsfem_basics.py"), "--fine", "20", "--coarse", "2",
         "--out-dir", str(tmp_path)], check=True, capture_output=True, text=True).stdout
    lines = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit()]
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
    rows = [line.split() for line in out.splitlines() if " slepc " in line or " learned " in line]
    assert len(rows) == 4
    assert all(float(r[-3]) >= 0 for r in rows)  # finite errors for both providers
    assert (tmp_path / "learned_basis.png").stat().st_size > 10_000
