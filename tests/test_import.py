import subprocess
import sys


def test_fem_ms_does_not_import_torch():
    code = "import sys, fem_ms, fem_ms.cli, fem_ms.gmsfem; from fem_ms import *; bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_info():
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "info"], check=True,
                         capture_output=True, text=True).stdout
    assert '"petsc": "3.26.0"' in out and '"slepc": "3.26.0"' in out


def test_cli_solve_with_gmsfem(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "solve", "--problem", "richards", "--fine", "20",
                          "--coarse", "2", "--n-basis", "4", "--out", str(tmp_path / "u.vtu")],
                         check=True, capture_output=True, text=True).stdout
    assert "GMsFEM (slepc, N_bf=4, 36 coarse DOFs)" in out
    assert (tmp_path / "u.vtu").is_file()
