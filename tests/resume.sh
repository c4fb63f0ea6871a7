#!/usr/bin/env bash
# Resume: 2 epochs straight vs 1 epoch, stop, --resume, 1 more epoch: bit-identical
# parameters, layer state and optimizer state at the same world size (here N ranks).
# Variant other-world (resume.sh N other-world M): the first epoch at N ranks, the rest at M
# ranks with the same global batch; global-mode data order does not depend on the world size,
# so the result matches the straight N-rank run up to summation order (rtol 1e-5).
# Variant adam-bn-dropout adds batch norm (running statistics are state), dropout (masks
# depend on the step) and Adam (two moment buffers and a step-dependent bias correction).
# Variant uneven is adam-bn-dropout with a global batch of 50, which N = 3 does not divide:
# the ranks take 16 or 17 rows by a rotation that the resumed run must continue, and the
# per-rank batch-norm statistics are averaged weighted by the rows each rank saw.
source "$(dirname "$0")/lib.sh"
N=${1:-2}
variant=${2:-plain}
M=${3:-$N} # ranks for the resumed part
make_blobs "$WORK/d.h5" --train 1200 --test 200 --features 16 --classes 4
configure() {
  write_mlp_config "$1" "$WORK/d.h5" "$2"
  if [ "$variant" = adam-bn-dropout ] || [ "$variant" = uneven ]; then
    sed -i 's/^lr = 0.05$/optimizer = adam\nlr = 0.003/; /^momentum = /d' "$1"
    awk '/^\[layer\]/ { seen++; if (seen == 2) printf "[layer]\ntype = batchnorm\n[layer]\ntype = dropout\nrate = 0.2\n" } { print }' \
      "$1" > "$1.tmp" && mv "$1.tmp" "$1"
  fi
  if [ "$variant" = uneven ]; then sed -i 's/^batch = 48$/batch = 50/' "$1"; fi
}
batch=48
[ "$variant" = uneven ] && batch=50
configure "$WORK/a.ini" "$WORK/straight"
run_mpi "$N" train "$WORK/a.ini" > "$WORK/a.log"
steps_per_epoch=$((1200 / batch))
configure "$WORK/b.ini" "$WORK/resumed"
run_mpi "$N" train "$WORK/b.ini" --set train.max_steps=$steps_per_epoch > "$WORK/b1.log"
[ "$(cat "$WORK/resumed/latest")" = "ckpt-$(printf %08d $steps_per_epoch).h5" ] \
  || fail "latest does not point at the epoch-1 checkpoint"
# resume with the run's own config.ini, lifting the step budget the first part ran under
run_mpi "$M" train --resume "$WORK/resumed" --set train.max_steps=0 > "$WORK/b2.log"
grep -q "resuming from .* at step $steps_per_epoch" "$WORK/b2.log" || fail "did not resume"
final=ckpt-$(printf %08d $((2 * steps_per_epoch))).h5
if [ "$variant" = other-world ]; then
  [ "$M" -eq 1 ] || grep -q "replicas identical on all $M ranks" "$WORK/b2.log" \
    || fail "the $M ranks differ"
  "$TEST_TOOLS/compare_params" "$WORK/straight/$final" "$WORK/resumed/$final" --rtol 1e-5
  exit 0
fi
"$TEST_TOOLS/compare_params" "$WORK/straight/$final" "$WORK/resumed/$final" --exact
# the optimizer state too (momentum, or Adam's moments): h5diff exits 0 only if equal
h5diff "$WORK/straight/$final" "$WORK/resumed/$final" /optimizer /optimizer \
  || fail "optimizer state differs after resume"
if [ "$variant" = uneven ]; then
  grep -q "batch 50 global (16 or 17 per rank)" "$WORK/b2.log" || fail "the split is not uneven"
fi
if [ "$variant" = adam-bn-dropout ] || [ "$variant" = uneven ]; then
  grep -q "adam_v" <(h5dump -H "$WORK/resumed/$final") || fail "no Adam state in the checkpoint"
  grep -q "running_var" <(h5dump -H "$WORK/resumed/$final") || fail "no batch-norm state"
fi
# a third start without --resume must refuse to overwrite the run
expect_error 20 "already holds checkpoints" run_mpi "$N" train "$WORK/b.ini"
