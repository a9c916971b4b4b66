"""scripts/bootstrap.sh's handling of the Debian packages (FEM_MS_SKIP_APT, root), run against a
fresh FEM_MS_HOME with stand-ins for dpkg-query, apt-get and id on PATH: nothing is built."""

import os
import subprocess

import pytest

from .conftest import REPO

BOOTSTRAP = REPO / "scripts" / "bootstrap.sh"
# dpkg-query as Debian's: an installed package as "NAME install ok installed", a removed one with
# another status, an unknown one on stderr only
DPKG_QUERY = """#!/bin/bash
for a in "$@"; do
  case $a in
    -*|'${Package}'*) ;;
    %(unknown)s) echo "dpkg-query: no packages found matching $a" >&2 ;;
    %(removed)s) echo "$a deinstall ok config-files" ;;
    *) echo "$a install ok installed" ;;
  esac
done
"""


def _bootstrap(tmp_path, *args, missing=(), uid=0, **env):
    """Run the bootstrap with FEM_MS_HOME in ``tmp_path`` and the package index unreachable (the
    download step, the first after apt, fails at once); ``missing``: packages dpkg does not list
    as installed. Returns the process and the apt-get calls made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    unknown, removed = (missing[:1] or ["-none-"]), (missing[1:] or ["-none-"])
    stubs = {"dpkg-query": DPKG_QUERY % {"unknown": "|".join(unknown), "removed": "|".join(removed)},
             "apt-get": f'#!/bin/bash\necho "$*" >> {tmp_path}/apt-get.calls\n',
             "id": f'#!/bin/bash\n[[ $1 == -u ]] && echo {uid} || exec /usr/bin/id "$@"\n'}
    for name, text in stubs.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != "FEM_MS_SKIP_APT"}  # only the test's setting
    environment.update(PATH=f"{bin_dir}:{os.environ['PATH']}", FEM_MS_HOME=str(tmp_path / "home"),
                       FEM_MS_SIMPLE_INDEX="http://127.0.0.1:9/simple", **env)
    proc = subprocess.run(["bash", str(BOOTSTRAP), *args], capture_output=True, text=True, env=environment,
                          timeout=120)
    calls = tmp_path / "apt-get.calls"
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_the_script_parses():
    subprocess.run(["bash", "-n", str(BOOTSTRAP)], check=True)


def test_missing_packages_are_listed_whether_unknown_or_removed(tmp_path):
    proc, _ = _bootstrap(tmp_path, "__run", "missing_apt_packages", missing=("libmetis-dev", "cmake"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cmake", "libmetis-dev"]  # in the order of the package list


def test_skip_apt_with_missing_packages_names_them_and_runs_no_apt(tmp_path):
    proc, calls = _bootstrap(tmp_path, missing=("libmetis-dev", "cmake"), FEM_MS_SKIP_APT="1")
    assert proc.returncode == 1 and not calls
    assert "FEM_MS_SKIP_APT=1, but these Debian packages are not installed: cmake libmetis-dev" in proc.stderr
    assert "FAILED step 'download'" not in proc.stderr  # stopped before building anything


def test_skip_apt_with_the_packages_installed_goes_on_without_apt(tmp_path):
    proc, calls = _bootstrap(tmp_path, FEM_MS_SKIP_APT="1", uid=1000)
    assert not calls and "apt: skipped (FEM_MS_SKIP_APT=1; the Debian packages are installed)" in proc.stdout
    # the next step ran (and failed on the unreachable index), naming the log to follow
    assert f"download: running; follow it with: tail -f {tmp_path / 'home'}/env-" in proc.stdout
    assert proc.returncode == 1 and "FAILED step 'download'" in proc.stderr


@pytest.mark.parametrize("uid, missing", [(0, ("cmake",)), (0, ()), (1000, ("cmake",)), (1000, ())])
def test_without_skip_apt_root_installs_and_others_are_told_what_to_do(tmp_path, uid, missing):
    proc, calls = _bootstrap(tmp_path, missing=missing, uid=uid)
    assert proc.returncode == 1  # at the download step, or at the apt check before it
    if uid == 0:  # as before FEM_MS_SKIP_APT existed: apt-get runs
        assert calls[0] == "update" and calls[1].startswith("install -y --no-install-recommends bison ")
        assert "FAILED step 'download'" in proc.stderr
    elif missing:
        assert not calls and "FAILED step 'download'" not in proc.stderr
        assert ("installing Debian packages needs root, and these are missing: cmake. Run the bootstrap as root, "
                "or install them yourself and rerun with FEM_MS_SKIP_APT=1") in proc.stderr
    else:
        assert not calls and "apt: skipped (not root, and the Debian packages are installed)" in proc.stdout
        assert "FAILED step 'download'" in proc.stderr
