"""Demos double as tests: each runs small and checks what it prints and writes."""

import subprocess
import sys


def test_fine_solve_demo(repo, tmp_path):
    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "fine_solve.py"), "--fine", "24", "--out-dir", str(tmp_path)],
        check=True, capture_output=True, text=True).stdout
    assert "kappa in [1, 9600]" in out
    assert "richards" in out and "rel. L2 %" in out
    assert (tmp_path / "fine_solve.png").stat().st_size > 10_000
    assert (tmp_path / "fine_solve.vtu").is_file()
