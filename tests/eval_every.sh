#!/usr/bin/env bash
# [train] eval_every_steps: evaluations inside the epoch (time-to-accuracy at a finer grain
# than epochs) add metrics lines at the steps asked for, with epoch_progress, and change
# nothing in training: the parameters equal a run without them bit for bit (no batch norm,
# whose statistics an evaluation averages). plot.sh draws them on a fractional epoch axis.
source "$(dirname "$0")/lib.sh"
make_blobs "$WORK/d.h5" --train 1537 --test 300 --features 16 --classes 4 --seed 3
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/plain" > "$WORK/plain.txt"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/every" --set train.eval_every_steps=10 \
  > "$WORK/every.txt"
cat "$WORK/every.txt"
steps=$(grep -o '"step": [0-9]*' "$WORK/every/metrics.jsonl" | cut -d' ' -f2 | paste -sd' ')
[ "$steps" = "10 20 30 32 40 50 60 64" ] || fail "evaluations at steps $steps (want 10 20 30 32 40 50 60 64)"
grep -q '"epoch_progress": 0.3125, "step": 10,' "$WORK/every/metrics.jsonl" || fail "no epoch_progress"
[ "$(sha_of "$WORK/plain.txt")" = "$(sha_of "$WORK/every.txt")" ] || fail "mid-epoch evaluations changed training"
"$(dirname "$0")/../jobs/plot.sh" "$WORK/every" -o "$WORK/every.png" > /dev/null
[ "$(($(wc -l < "$WORK/every.tsv") - 1))" -eq 8 ] || fail "plot.sh did not keep the 8 evaluations"
echo "ok: 8 evaluations, the same parameters as without them"
