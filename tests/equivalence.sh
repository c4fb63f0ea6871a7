#!/usr/bin/env bash
# N ranks vs 1 rank: 50 steps of the same job give parameters equal within 1e-5 relative
# (the global batch is the same; only the summation order of the gradients differs).
source "$(dirname "$0")/lib.sh"
N=${1:?world size}
make_blobs "$WORK/d.h5" --train 2400 --test 200 --features 16 --classes 4
for n in 1 "$N"; do
  write_mlp_config "$WORK/job$n.ini" "$WORK/d.h5" "$WORK/run$n" "max_steps = 50"
  run_mpi "$n" train "$WORK/job$n.ini" > "$WORK/log$n.txt"
  grep -q "replicas identical on all $n ranks" "$WORK/log$n.txt" || fail "no replica check"
done
"$TEST_TOOLS/compare_params" "$WORK/run1/ckpt-00000050.h5" "$WORK/run$N/ckpt-00000050.h5" \
  --rtol 1e-5
