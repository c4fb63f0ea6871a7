#!/usr/bin/env bash
# setup.sh: installs what is missing (Debian/Ubuntu apt), then configures and builds mpinet
# into build/. Shared by jobs/quickstart.sh and tests/run.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc make cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
          libopenblas-dev libinih-dev zlib1g-dev dataset-fashion-mnist bc
          # tests and cluster tooling: a throwaway SLURM, network namespaces, plots, h5py,
          # PyTorch (the reference that predictions are checked against), and SimGrid with
          # the serial HDF5 for the simulated build (mpinet-sim, build-sim/)
          slurm-wlm munge iproute2 gnuplot-nox python3-h5py python3-torch libsimgrid-dev
          libhdf5-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: error: need root to run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" > build.log 2>&1 \
  || { cat build.log; exit 1; }
cmake --build build -j"$(nproc)" >> build.log 2>&1 || { cat build.log; exit 1; }
echo "setup: built build/mpinet ($(build/mpinet --version))"
# the simulated build: the same sources under SimGrid's smpicc (README "Scaling")
if command -v smpicc > /dev/null && pkg-config --exists hdf5-serial; then
  if SMPI_PRETEND_CC=1 cmake -S . -B build-sim -DCMAKE_C_COMPILER=smpicc -DMPINET_SIMULATE=ON \
       -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" >> build.log 2>&1 &&
     cmake --build build-sim -j"$(nproc)" >> build.log 2>&1; then
    echo "setup: built build-sim/mpinet-sim (SimGrid $(smpirun --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1))"
  else
    echo "setup: warning: the simulated build failed (build.log); the simulate tests will skip" >&2
  fi
fi
