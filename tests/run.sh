#!/usr/bin/env bash
# run.sh: the whole test suite from a fresh Debian 12 machine: installs what is missing,
# builds, and runs every CTest test (unit, MPI at world sizes 1-4, end-to-end, bad input).
# Extra arguments go to ctest, e.g.  tests/run.sh -L mpi
set -euo pipefail
cd "$(dirname "$0")/.."
jobs/setup.sh
cd build
ctest --output-on-failure --timeout 300 -j"$(nproc)" "$@"
