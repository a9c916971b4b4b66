#!/usr/bin/env bash
# bootstrap.sh — build the fem-ms environment: PETSc + SLEPc (from the PyPI sdists, configured
# against Debian's MPI/HDF5/MUMPS/ScaLAPACK/SuiteSparse/PT-Scotch), petsc4py + slepc4py,
# Firedrake, torch (CPU), h5py (parallel HDF5), meshio, gmsh, pytest.
#
# The single source of truth for installing fem-ms; `make`, scripts/env and .ci/run call it.
#
# Where:  $FEM_MS_HOME (default ~/.cache/fem-ms)/env-<hash of scripts/versions.env>/
#           venv/  petsc/  slepc/  logs/<step>.log  stamps/<step>  env.sh
#         outside the clone, so a fresh clone (as in CI) reuses a finished build in seconds.
# Idempotent: each step writes a stamp on success and is skipped when its stamp exists.
# Measured on the 2-core Debian 12 machine: see docs/install.md.
#
# Needs: Debian 12 (or a system with its packages at its paths: the PETSc configure and the h5py
# build below name them), Python 3.11, the package index, and root for the apt step.
#
# Usage:  scripts/bootstrap.sh            build (or check) the environment
#         scripts/bootstrap.sh --print-prefix   print the environment directory and exit
# Environment: FEM_MS_HOME, PYTHON (default python3), JOBS (default nproc),
#              FEM_MS_SIMPLE_INDEX (a PEP 503 index to fetch the PETSc/SLEPc sdists from),
#              FEM_MS_SKIP_APT=1 (no apt-get, so no root: the Debian packages below must be
#              installed already; the bootstrap names any that are not).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$SCRIPT_DIR/bootstrap.sh
VERSIONS=$SCRIPT_DIR/versions.env
# shellcheck source=versions.env
source "$VERSIONS"

FEM_MS_HOME=${FEM_MS_HOME:-$HOME/.cache/fem-ms}
KEY=$(sha256sum "$VERSIONS" | cut -c1-12)
PREFIX=$FEM_MS_HOME/env-$KEY
if [[ ${1:-} == --print-prefix ]]; then echo "$PREFIX"; exit 0; fi

PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
STAMPS=$PREFIX/stamps
DL=$FEM_MS_HOME/downloads
VENV=$PREFIX/venv
LOGS=$PREFIX/logs
mkdir -p "$STAMPS" "$DL" "$LOGS"

export PETSC_DIR=$PREFIX/petsc
export PETSC_ARCH=arch-fem-ms
export SLEPC_DIR=$PREFIX/slepc
# OpenMPI refuses to run as root without these; PETSc's configure and checks run mpiexec.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 HWLOC_COMPONENTS=-gl
export PIP_DISABLE_PIP_VERSION_CHECK=1

STEPS=(apt download venv pybase h5py pydeps petsc slepc petsc4py slepc4py firedrake pyextras envfile smoke)
NSTEPS=${#STEPS[@]}
step_no() { local i; for i in "${!STEPS[@]}"; do if [[ ${STEPS[$i]} == "$1" ]]; then echo $((i + 1)); fi; done; }
log() { printf '[fem-ms bootstrap %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# step NAME: run do_NAME in a fresh bash process (so `set -e` holds inside it) unless its
# stamp exists; log to $LOGS/NAME.log; on failure name the step and the log and stop.
step() {
  local name=$1 n; n=$(step_no "$name")
  if [[ -f $STAMPS/$name ]]; then log "[$n/$NSTEPS] $name: done before ($(cat "$STAMPS/$name"))"; return 0; fi
  log "[$n/$NSTEPS] $name: running; follow it with: tail -f $LOGS/$name.log"
  local t0=$SECONDS
  if bash "$SELF" __run "do_$name" > "$LOGS/$name.log" 2>&1; then
    echo "$((SECONDS - t0)) s" > "$STAMPS/$name"
    log "[$n/$NSTEPS] $name: done in $((SECONDS - t0)) s"
  else
    log "[$n/$NSTEPS] FAILED step '$name' after $((SECONDS - t0)) s. Full log: $LOGS/$name.log. Last lines:" >&2
    tail -30 "$LOGS/$name.log" >&2
    return 1
  fi
}

# Wait for background steps; fail if any failed.
bg_wait() { local rc=0 p; for p in "$@"; do wait "$p" || rc=1; done; return $rc; }

INDEX=${FEM_MS_SIMPLE_INDEX:-$("$PYTHON" -m pip config get global.index-url 2>/dev/null \
  || "$PYTHON" -c "from pip._internal.models.index import PyPI; print(PyPI.simple_url)")}
INDEX=${INDEX%/}

# Fetch an sdist from the PEP 503 page of the index pip uses, and check its sha256.
# Not `pip download`: for petsc/slepc it runs their metadata build (~7 minutes).
fetch_sdist() {
  local name=$1 version=$2 out href url sha
  out=$DL/$name-$version.tar.gz
  [[ -s $out ]] && return 0
  href=$(curl -fsSL "$INDEX/$name/" | grep -o "href=\"[^\"]*/$name-$version\.tar\.gz#sha256=[0-9a-f]*\"" | head -1)
  [[ -n $href ]] || { echo "cannot find $name-$version.tar.gz on $INDEX" >&2; return 1; }
  href=${href#href=\"}; href=${href%\"}
  url=${href%%#*}; sha=${href##*sha256=}
  case $url in http*) ;; *) url=$INDEX/$name/$url ;; esac
  curl -fsSL -o "$out.part" "$url"
  echo "$sha  $out.part" | sha256sum -c - >/dev/null
  mv "$out.part" "$out"
}

APT_PKGS=(
  bison build-essential flex gfortran pkg-config zlib1g-dev cmake curl ca-certificates
  python3-dev python3-venv
  libopenmpi-dev openmpi-bin libopenblas-dev
  libhdf5-mpi-dev libhdf5-openmpi-dev
  libfftw3-dev libfftw3-mpi-dev libhwloc-dev
  libmumps-ptscotch-dev libmetis-dev libptscotch-dev libscalapack-openmpi-dev
  libsuitesparse-dev libsuperlu-dev libsuperlu-dist-dev
  # the gmsh wheel's libgmsh links these X/GL libraries even when run headless
  libglu1-mesa libxcursor1 libxft2 libxinerama1 libxrender1
)

do_apt() {
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PKGS[@]}"
}

# The packages of APT_PKGS that dpkg does not list as installed, one a line (all of them where
# there is no dpkg). One dpkg-query for all: scripts/env runs this check every time.
missing_apt_packages() {
  local -A installed=()
  local name status p
  while read -r name status; do
    [[ $status == "install ok installed" ]] && installed[$name]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PKGS[@]}" 2>/dev/null || true)
  for p in "${APT_PKGS[@]}"; do [[ -n ${installed[$p]:-} ]] || echo "$p"; done
}

# The apt step as root; otherwise, or with FEM_MS_SKIP_APT=1, the check that it has nothing to do,
# failing early with the missing packages' names (apt-get itself would fail in its log).
apt_step() {
  local missing n why fix skipped; n=$(step_no apt)
  missing=$(missing_apt_packages | tr '\n' ' '); missing=${missing% }
  if [[ ${FEM_MS_SKIP_APT:-0} == 1 ]]; then
    why="FEM_MS_SKIP_APT=1, but these Debian packages are not installed"
    fix="Install them (as root: apt-get install $missing), or unset FEM_MS_SKIP_APT to let the bootstrap do it"
    skipped="FEM_MS_SKIP_APT=1; the Debian packages are installed"
  elif [[ $(id -u) != 0 ]]; then
    why="installing Debian packages needs root, and these are missing"
    fix="Run the bootstrap as root, or install them yourself and rerun with FEM_MS_SKIP_APT=1"
    skipped="not root, and the Debian packages are installed"
  else
    step apt
    return
  fi
  if [[ -n $missing ]]; then
    log "[$n/$NSTEPS] FAILED step 'apt': $why: $missing." "$fix" >&2
    return 1
  fi
  log "[$n/$NSTEPS] apt: skipped ($skipped)"
}

do_download() {
  fetch_sdist petsc "$PETSC_VERSION"
  fetch_sdist slepc "$SLEPC_VERSION"
}

# PETSc configure: Firedrake's firedrake-configure options, adapted to Debian 12's libraries.
PETSC_INCS="-I/usr/include/suitesparse -I/usr/include/superlu -I/usr/include/superlu-dist -I/usr/include/scotch"
PETSC_OPTS=(
  "PETSC_ARCH=$PETSC_ARCH"
  "--CFLAGS+=$PETSC_INCS" "--CXXFLAGS+=$PETSC_INCS" "--FFLAGS+=$PETSC_INCS"
  "--COPTFLAGS=-O3" "--CXXOPTFLAGS=-O3" "--FOPTFLAGS=-O3"
  --with-c2html=0 --with-debugging=0 --with-fortran-bindings=0
  --with-shared-libraries=1 --with-strict-petscerrorcode
  --with-cc=mpicc --with-cxx=mpicxx --with-fc=mpif90
  # nvcc may be on PATH here; a CPU build must not pick it up
  --with-cuda=0 --with-hip=0 --with-sycl=0 --with-x=0
  --with-bison --with-fftw --with-hwloc --with-zlib --with-metis
  --with-hdf5-include=/usr/include/hdf5/openmpi
  "--with-hdf5-lib=[/usr/lib/x86_64-linux-gnu/hdf5/openmpi/libhdf5.so,/usr/lib/x86_64-linux-gnu/hdf5/openmpi/libhdf5_hl.so]"
  # Debian 12's hypre 2.26 does not compile with PETSc 3.26 and no newer one can be fetched:
  # GAMG and MUMPS take its place (docs/install.md).
  --with-hypre=0
  --with-mumps --with-mumps-include=/usr/include
  "--with-mumps-lib=-ldmumps_ptscotch -lzmumps_ptscotch -lsmumps_ptscotch -lcmumps_ptscotch -lmumps_common_ptscotch -lpord_ptscotch"
  --with-ptscotch --with-ptscotch-include=/usr/include/scotch
  "--with-ptscotch-lib=-lptscotch -lptscotcherr -lscotch -lscotcherr"
  --with-scalapack-lib=-lscalapack-openmpi
  --with-suitesparse
  --with-superlu_dist --with-superlu_dist-include=/usr/include/superlu-dist --with-superlu_dist-lib=-lsuperlu_dist
  --with-blaslapack-lib=-lopenblas
)

do_petsc() {
  rm -rf "$PETSC_DIR"; mkdir -p "$PETSC_DIR"
  tar xzf "$DL/petsc-$PETSC_VERSION.tar.gz" -C "$PETSC_DIR" --strip-components=1
  cd "$PETSC_DIR"
  python3 ./configure "${PETSC_OPTS[@]}"
  make PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" MAKE_NP="$JOBS" all
  make PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" check
  test -f "$PETSC_DIR/$PETSC_ARCH/lib/libpetsc.so"
}

do_slepc() {
  rm -rf "$SLEPC_DIR"; mkdir -p "$SLEPC_DIR"
  tar xzf "$DL/slepc-$SLEPC_VERSION.tar.gz" -C "$SLEPC_DIR" --strip-components=1
  cd "$SLEPC_DIR"
  python3 ./configure
  make SLEPC_DIR="$SLEPC_DIR" PETSC_DIR="$PETSC_DIR" PETSC_ARCH="$PETSC_ARCH" MAKE_NP="$JOBS"
  test -f "$SLEPC_DIR/$PETSC_ARCH/lib/libslepc.so"
}

do_venv() {
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -U pip setuptools wheel
}

PIP=("$VENV/bin/pip" install --no-cache-dir)

do_pybase() {
  # mpi4py compiled against Debian's OpenMPI, not the MPI-ABI binary wheel.
  MPICC=mpicc CC=mpicc "${PIP[@]}" --no-binary mpi4py mpi4py numpy cython pkgconfig pybind11 scipy
}

do_h5py() {
  CC=mpicc HDF5_MPI=ON HDF5_DIR=/usr/lib/x86_64-linux-gnu/hdf5/openmpi \
    "${PIP[@]}" --no-build-isolation --no-binary h5py h5py
}

do_pydeps() {
  # libsupermesh is a Fortran + MPI sdist (scikit-build-core, cmake, mpif90).
  CC=mpicc CXX=mpicxx FC=mpif90 "${PIP[@]}" \
    'petsctools>=2026.1' 'rtree>=1.4.1' 'firedrake-rtree>=2026.3.0' 'libsupermesh>=2026.3' \
    'setuptools>=77.0.3' 'islpy<2026.2' 'loopy>2024.1' "$UFL_SPEC" "$FIAT_SPEC" \
    'pyadjoint-ad>=2026.10' sympy 'pytools[siphash]' cachetools 'decorator<=4.4.2' immutabledict \
    progress pycparser requests packaging
}

do_petsc4py() {
  # No build isolation: build against the venv's numpy/cython. No cache: never reuse a
  # wheel built against another PETSc.
  "${PIP[@]}" --no-build-isolation --no-binary petsc4py "petsc4py==$PETSC_VERSION"
}

do_slepc4py() {
  "${PIP[@]}" --no-build-isolation --no-binary slepc4py "slepc4py==$SLEPC_VERSION"
}

do_firedrake() {
  CC=mpicc CXX=mpicxx HDF5_MPI=ON \
    "${PIP[@]}" --no-build-isolation --no-binary h5py "firedrake==$FIREDRAKE_VERSION"
}

do_pyextras() {
  # torch pinned: the CPU wheel on this disk. An unpinned torch pulls a multi-GB CUDA build.
  # shellcheck disable=SC2086
  "${PIP[@]}" "torch==$TORCH_VERSION" $EXTRA_PY_DEPS
  "$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION'), torch.__version__"
}

do_envfile() {
  cat > "$PREFIX/env.sh.part" <<EOF
# Generated by scripts/bootstrap.sh: the environment of the fem-ms venv. Source it.
export PETSC_DIR=$PETSC_DIR PETSC_ARCH=$PETSC_ARCH SLEPC_DIR=$SLEPC_DIR
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 HWLOC_COMPONENTS=-gl
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:\$PATH
EOF
  mv "$PREFIX/env.sh.part" "$PREFIX/env.sh"
}

do_smoke() {
  # shellcheck disable=SC1091
  source "$PREFIX/env.sh"
  cd /tmp
  python - <<'EOF'
from firedrake import *
from slepc4py import SLEPc
from petsc4py import PETSc
import torch, h5py, meshio, gmsh
assert h5py.get_config().mpi, "h5py was built without MPI"
m = UnitSquareMesh(8, 8)
V = FunctionSpace(m, "CG", 1)
u, v = TrialFunction(V), TestFunction(V)
s = Function(V)
solve(inner(grad(u), grad(v)) * dx == Constant(1.0) * v * dx, s, bcs=DirichletBC(V, 0, "on_boundary"))
print("PETSc", PETSc.Sys.getVersion(), "SLEPc", SLEPc.Sys.getVersion(), "torch", torch.__version__,
      "max u", s.dat.data.max())
EOF
}

# The plugin layer: the dependencies of plugins/fem_ms_torch as plugins/pyproject.toml declares
# them (scripts/plugin_requirements.py prints them), installed on top of the PETSc/Firedrake/torch
# environment. Not part of the environment's cache key: a changed list re-runs only this layer
# (a minute), not the PETSc build. torch itself is pinned in versions.env and held by a constraint.
PLUGIN_REQS=("$VENV/bin/python" "$SCRIPT_DIR/plugin_requirements.py" "$SCRIPT_DIR/../plugins/pyproject.toml")
do_plugins() {
  echo "torch==$TORCH_VERSION" > "$PREFIX/torch-constraint.txt"
  "${PLUGIN_REQS[@]}" > "$PREFIX/plugin-requirements.txt"
  # torch-harmonics compiles a torch extension: build it against the venv's torch.
  "${PIP[@]}" --no-build-isolation --no-binary torch-harmonics -c "$PREFIX/torch-constraint.txt" \
    -r "$PREFIX/plugin-requirements.txt"
  missing=$("${PLUGIN_REQS[@]}" --missing)
  [[ -z $missing ]] || { echo "still unsatisfied after pip install: $missing" >&2; exit 1; }
  # the compiled extension is what breaks (undefined symbols) when built against another torch
  "$VENV/bin/python" -c "import torch_harmonics"
  "$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION'), torch.__version__"
}
# No stamp: checkouts with different lists share this environment, so every run asks whether
# the installed distributions satisfy this checkout's list (a fraction of a second).
plugin_layer() {
  local t0=$SECONDS
  [[ -z $("${PLUGIN_REQS[@]}" --missing) ]] && return 0
  log "plugin layer: installing the dependencies of plugins/pyproject.toml; follow it with: tail -f $LOGS/plugins.log"
  if bash "$SELF" __run do_plugins > "$LOGS/plugins.log" 2>&1; then
    log "plugin layer: done in $((SECONDS - t0)) s"
  else
    log "FAILED: plugin layer after $((SECONDS - t0)) s. Full log: $LOGS/plugins.log. Last lines:" >&2
    tail -30 "$LOGS/plugins.log" >&2
    return 1
  fi
}

# internal: `bootstrap.sh __run do_STEP` runs one step function in a fresh process
if [[ ${1:-} == __run ]]; then shift; "$@"; exit 0; fi

# One build at a time per environment (two clones bootstrapping at once share the cache).
exec 9>"$PREFIX/.lock"
if ! flock -n 9; then log "another bootstrap is building $PREFIX; waiting for it"; flock 9; fi

if [[ -f $STAMPS/complete ]]; then
  # Cheap re-check: the system libraries may have gone while the cache survived.
  if [[ -n $(missing_apt_packages) ]]; then
    rm -f "$STAMPS/apt" "$STAMPS/complete"
  else
    plugin_layer
    log "environment ready: $PREFIX"; exit 0
  fi
fi

T0=$SECONDS
log "building the fem-ms environment in $PREFIX ($JOBS jobs); fresh build ~25 min on 2 cores"
if [[ -f $STAMPS/apt && -n $(missing_apt_packages) ]]; then
  rm -f "$STAMPS/apt"
fi
apt_step
step download
step venv
# PETSc (both cores) alongside the mostly single-core Python builds.
( step pybase && step h5py && step pydeps ) & PA=$!
step petsc || { wait $PA; exit 1; }
bg_wait $PA
step slepc & PB=$!
step petsc4py || { wait $PB; exit 1; }
bg_wait $PB
step slepc4py & PC=$!
( step firedrake && step pyextras ) || { wait $PC; exit 1; }
bg_wait $PC
step envfile
step smoke
plugin_layer
echo "$((SECONDS - T0)) s" > "$STAMPS/complete"
log "environment ready in $((SECONDS - T0)) s: $PREFIX"
