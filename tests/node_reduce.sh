#!/usr/bin/env bash
# The shared-memory gradient sum of one node's ranks (see mpi_node_reduce_test.c).
source "$(dirname "$0")/lib.sh"
timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np "${1:?world size}" "$TEST_TOOLS/mpi_node_reduce_test"
