#!/usr/bin/env bash
# The start-up timing of MPI gradient buckets (allreduce = mpi, bucket_mb = auto, 2 ranks) runs
# dry steps that must change nothing: the tuned run ends bit-identical to runs with fixed
# buckets, with and without overlap, and to the default run, which sums in the node's shared
# memory (at 2 ranks every one of them sums a + b per element). The model has batch norm (its
# running statistics must be restored after the dry steps), dropout and Adam.
source "$(dirname "$0")/lib.sh"
make_blobs "$WORK/d.h5" --train 960 --test 100 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/unused" "max_steps = 30"
sed -i 's/^lr = 0.05$/optimizer = adam\nlr = 0.003/; /^momentum = /d' "$WORK/job.ini"
awk '/^\[layer\]/ { seen++; if (seen == 2) printf "[layer]\ntype = batchnorm\n[layer]\ntype = dropout\nrate = 0.2\n" } { print }' \
  "$WORK/job.ini" > "$WORK/tmp.ini" && mv "$WORK/tmp.ini" "$WORK/job.ini"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/auto" --set train.allreduce=mpi \
  > "$WORK/auto.log"
grep -q "fastest of the configurations timed at start-up" "$WORK/auto.log" \
  || fail "the auto run did not time its buckets"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/node" > "$WORK/node.log"
grep -q "summed in shared memory" "$WORK/node.log" || fail "the default run did not sum in shared memory"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/one" --set train.bucket_mb=100 \
  --set train.overlap=false --set train.allreduce=mpi > /dev/null
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/small" --set train.bucket_mb=0.004 \
  --set train.allreduce=mpi > /dev/null
for other in node one small; do
  "$TEST_TOOLS/compare_params" "$WORK/auto/ckpt-00000030.h5" "$WORK/$other/ckpt-00000030.h5" \
    --exact || fail "the tuned run differs from the $other-bucket run"
done
