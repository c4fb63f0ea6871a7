#!/usr/bin/env bash
# train.on_nonfinite = skip: a row that overflows the loss on ONE rank (shard mode, rank 1
# holds it) makes every rank drop that step's update together; the run finishes, counts the
# skipped steps in metrics.jsonl, and the replicas stay identical and finite.
source "$(dirname "$0")/lib.sh"
"$TEST_TOOLS/make_bad_data" huge-last-row "$WORK/huge.h5"
write_mlp_config "$WORK/job.ini" "$WORK/huge.h5" "$WORK/run" "on_nonfinite = skip"
run_mpi 2 train "$WORK/job.ini" --set data.shuffle=shard --set train.batch=8 \
  --set layer3.units=3 --set layer1.activation=relu --set train.epochs=3 > "$WORK/log.txt" 2> "$WORK/err.txt"
cat "$WORK/err.txt"
grep -q "replicas identical on all 2 ranks" "$WORK/log.txt" || fail "no replica agreement"
[ "$(grep -c 'step skipped on every rank' "$WORK/err.txt")" -eq 3 ] \
  || fail "expected one skipped step per epoch (3)"
grep -q '"skipped_steps": 3' <(tail -1 "$WORK/run/metrics.jsonl") || fail "metrics lack the count"
! grep -q 'nan' "$WORK/run/metrics.jsonl" || fail "metrics.jsonl holds a nan"
"$MPINET" eval "$WORK/run/ckpt-00000024.h5" "$WORK/huge.h5" | grep -q "accuracy" \
  || fail "the final checkpoint does not evaluate"
