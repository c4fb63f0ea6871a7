#!/usr/bin/env bash
# Reproducible mode's allreduce is one fixed binary tree (see mpi_tree_test.c).
source "$(dirname "$0")/lib.sh"
timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np "${1:?world size}" "$TEST_TOOLS/mpi_tree_test"
