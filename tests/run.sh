#!/usr/bin/env bash
# run.sh: the whole test suite from a fresh Debian 12 machine: installs what is missing,
# builds, and runs every CTest test (unit, MPI at world sizes 1-4, end-to-end, faults, bad
# input); then rebuilds with AddressSanitizer + UndefinedBehaviorSanitizer (build-sanitize/)
# and runs the whole suite again under them, with leak checking for the single-process unit
# tests (cmake/lsan.supp names only MPI's and HDF5's own allocations). In MPI processes leak
# checking is off: Open MPI's plugins are unloaded at exit, so their allocations cannot even
# be attributed. --quick skips the sanitizer pass. Other arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
jobs/setup.sh
(cd build && ctest --output-on-failure --timeout 300 -j"$(nproc)" "$@")
[ "$quick" = 1 ] && exit 0
echo "run.sh: the same suite under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-sanitize -DMPINET_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  > build-sanitize.log 2>&1 || { cat build-sanitize.log; exit 1; }
cmake --build build-sanitize -j"$(nproc)" >> build-sanitize.log 2>&1 || { cat build-sanitize.log; exit 1; }
cd build-sanitize
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
asan=suppressions=$PWD/../cmake/asan.supp
ASAN_OPTIONS=$asan:detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../cmake/lsan.supp \
  ctest --output-on-failure --timeout 300 -L unit "$@"
ASAN_OPTIONS=$asan:detect_leaks=0 ctest --output-on-failure --timeout 300 -j"$(nproc)" -LE unit "$@"
