#!/usr/bin/env bash
# Recurrent layers learn: on synthetic sequences whose class is the frequency of a noisy sine
# (only visible across time steps), an LSTM or RNN reaches >= 90% test accuracy at np=2.
source "$(dirname "$0")/lib.sh"
kind=${1:?lstm or rnn}
"$MPINET" convert synthetic --kind sequence -o "$WORK/seq.h5" --train 2048 --test 512 \
  --features 2 --steps 20 --classes 4 > /dev/null
cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/seq.h5
[train]
epochs = 8
batch = 32
optimizer = adam
lr = 0.01
clip_norm = 5
progress = lines
[checkpoint]
dir = $WORK/run
every_epochs = 0
[layer]
type = $kind
units = 24
[layer]
type = dense
units = 4
INI
run_mpi 2 train "$WORK/job.ini" | tee "$WORK/log.txt"
acc=$(tail -1 "$WORK/run/metrics.jsonl" | grep -Eo '"test_accuracy": [0-9.e+-]+' | awk '{print $2}')
(( $(echo "$acc >= 0.9" | bc -l) )) || fail "$kind reached only $acc"
