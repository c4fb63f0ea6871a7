#!/usr/bin/env bash
# 16-bit gradient sums: conversions, the error bound, error feedback (see mpi_compress_test.c).
source "$(dirname "$0")/lib.sh"
timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np "${1:?world size}" "$TEST_TOOLS/mpi_compress_test"
