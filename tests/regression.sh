#!/usr/bin/env bash
# Regression with float targets and the MSE loss, at np=2: the test loss falls to under a
# third of its first-epoch value, and metrics.jsonl writes null (valid JSON) for accuracy.
source "$(dirname "$0")/lib.sh"
"$MPINET" convert synthetic -o "$WORK/r.h5" --kind regression --train 2000 --test 400 \
  --features 8 --classes 2 > /dev/null
cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/r.h5
[train]
epochs = 12
batch = 32
lr = 0.05
loss = mse
progress = lines
[checkpoint]
dir = $WORK/run
every_epochs = 0
[layer]
type = dense
units = 32
activation = tanh
[layer]
type = dense
units = 2
activation = tanh
INI
run_mpi 2 train "$WORK/job.ini" | tee "$WORK/log.txt"
first=$(head -1 "$WORK/run/metrics.jsonl" | grep -Eo '"test_loss": [0-9.e+-]+' | cut -d' ' -f2)
last=$(tail -1 "$WORK/run/metrics.jsonl" | grep -Eo '"test_loss": [0-9.e+-]+' | cut -d' ' -f2)
echo "test_loss: first epoch $first, last epoch $last"
(( $(echo "$last * 3 < $first" | bc -l) )) || fail "MSE did not fall enough"
grep -q '"test_accuracy": null' "$WORK/run/metrics.jsonl" || fail "accuracy should be null"
# every_epochs = 0: only the final checkpoint
[ "$(ls "$WORK/run"/ckpt-*.h5 | wc -l)" -eq 1 ] || fail "expected only the final checkpoint"
