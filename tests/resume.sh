#!/usr/bin/env bash
# Resume: 2 epochs straight vs 1 epoch, stop, --resume, 1 more epoch: bit-identical
# parameters and momentum at the same world size (here N ranks).
source "$(dirname "$0")/lib.sh"
N=${1:-2}
make_blobs "$WORK/d.h5" --train 1200 --test 200 --features 16 --classes 4
write_mlp_config "$WORK/a.ini" "$WORK/d.h5" "$WORK/straight"
run_mpi "$N" train "$WORK/a.ini" > "$WORK/a.log"
steps_per_epoch=$((1200 / 48))
write_mlp_config "$WORK/b.ini" "$WORK/d.h5" "$WORK/resumed"
run_mpi "$N" train "$WORK/b.ini" --set train.max_steps=$steps_per_epoch > "$WORK/b1.log"
[ "$(cat "$WORK/resumed/latest")" = "ckpt-$(printf %08d $steps_per_epoch).h5" ] \
  || fail "latest does not point at the epoch-1 checkpoint"
# resume with the run's own config.ini, lifting the step budget the first part ran under
run_mpi "$N" train --resume "$WORK/resumed" --set train.max_steps=0 > "$WORK/b2.log"
grep -q "resuming from .* at step $steps_per_epoch" "$WORK/b2.log" || fail "did not resume"
final=ckpt-$(printf %08d $((2 * steps_per_epoch))).h5
"$TEST_TOOLS/compare_params" "$WORK/straight/$final" "$WORK/resumed/$final" --exact
# momentum too: compare the optimizer state by comparing the whole checkpoints' tensors
h5diff -r "$WORK/straight/$final" "$WORK/resumed/$final" /optimizer /optimizer \
  || fail "momentum differs after resume"
# a third start without --resume must refuse to overwrite the run
expect_error 20 "already holds checkpoints" run_mpi "$N" train "$WORK/b.ini"
