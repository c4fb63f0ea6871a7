#!/usr/bin/env bash
# Evaluation counts every test sample exactly once: the same checkpoint evaluated at world
# sizes 1..4 reports the identical number correct, over all 1001 test rows (1001 is not a
# multiple of any world size or of the evaluation batch).
source "$(dirname "$0")/lib.sh"
make_blobs "$WORK/d.h5" --train 960 --test 1001 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run" "max_steps = 3"
run_mpi 1 train "$WORK/job.ini" > /dev/null
ckpt="$WORK/run/ckpt-00000003.h5"
for n in 1 2 3 4; do
  run_mpi "$n" eval "$ckpt" "$WORK/d.h5" --batch 100 | tee "$WORK/eval$n.txt"
  grep -Eo 'correct [0-9]+ of [0-9]+' "$WORK/eval$n.txt" > "$WORK/count$n.txt" \
    || fail "no count at np=$n"
done
grep -q ' of 1001$' "$WORK/count1.txt" || fail "not all 1001 rows counted: $(cat "$WORK/count1.txt")"
for n in 2 3 4; do
  cmp -s "$WORK/count1.txt" "$WORK/count$n.txt" \
    || fail "np=$n: $(cat "$WORK/count$n.txt") vs np=1: $(cat "$WORK/count1.txt")"
done
echo "identical at np=1..4: $(cat "$WORK/count1.txt")"
