#!/usr/bin/env bash
# The shared-memory gradient sum (see mpi_node_reduce_test.c): node_reduce.sh N [K] runs N
# ranks, with K in "nodes" of K consecutive ranks (the sum across nodes on one machine).
source "$(dirname "$0")/lib.sh"
[ -n "${2:-}" ] && export MPINET_TEST_NODE_RANKS=$2
timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np "${1:?world size}" "$TEST_TOOLS/mpi_node_reduce_test"
