#!/usr/bin/env bash
# After start-up every rank's parameters are bit-identical (see mpi_broadcast_test.c).
source "$(dirname "$0")/lib.sh"
timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np "${1:?world size}" "$TEST_TOOLS/mpi_broadcast_test"
