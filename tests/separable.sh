#!/usr/bin/env bash
# End to end: a small separable problem reaches 100% train accuracy in 4 epochs at np=2, in
# global and in shard mode (shard: 1537 rows, which no world size divides). How fast is the
# benchmarks' question (jobs/bench/): a wall-clock bound here failed whenever the machine
# was busy, and a hang is the test timeout's to catch.
source "$(dirname "$0")/lib.sh"
mode=${1:-global}
make_blobs "$WORK/d.h5" --train 1537 --test 300 --features 16 --classes 4 --seed 3
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run"
run_mpi 2 train "$WORK/job.ini" --set data.shuffle="$mode" --set train.epochs=4 > "$WORK/log.txt"
cat "$WORK/log.txt"
if [ "$mode" = shard ]; then   # rank 0 holds only its half: rows [0, 1537 * 1 / 2)
  grep -q 'shard mode: rank 0 holds rows \[0, 768)' "$WORK/log.txt" || fail "shard not 1/N"
fi
last=$(ls "$WORK/run"/ckpt-*.h5 | sort | tail -1)
run_mpi 2 eval "$last" "$WORK/d.h5" --split train | tee "$WORK/eval.txt"
grep -q 'accuracy 1.0000 (correct 1537 of 1537)' "$WORK/eval.txt" || fail "not 100% on train"
[ "$(wc -l < "$WORK/run/metrics.jsonl")" -eq 4 ] || fail "metrics.jsonl should have 4 rows"
for key in epoch step train_loss test_loss test_accuracy samples_per_s wall_s; do
  grep -q "\"$key\":" "$WORK/run/metrics.jsonl" || fail "metrics.jsonl lacks $key"
done
