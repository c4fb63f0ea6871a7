#!/usr/bin/env bash
# [data] memory_mb in shard mode: a training set several times the cap streams from the
# file. At 2 ranks: the run says it streams and learns; peak RSS is far below the in-memory
# run's (by at least half of what the cap keeps out of memory); stopping after one epoch and
# resuming ends bit-identical to a straight streaming run; global shuffling with the same cap
# is refused with one line naming the file and key. At 1 rank with a CPU to spare, the
# reader runs at idle priority; starved of CPU (the test hook MPINET_FAULT=starve-reader), it
# is replaced by one at normal priority (a warning says so) and the run ends bit-identical to
# the calm one (stream.sh starved).
source "$(dirname "$0")/lib.sh"
"$MPINET" convert synthetic -o "$WORK/big.h5" --kind blobs --train 40000 --test 500 \
  --features 256 --classes 8 > /dev/null # x: 41 MB of float32, 20 MB per rank
cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/big.h5
shuffle = shard
[train]
epochs = 2
batch = 128
lr = 0.05
momentum = 0.9
progress = lines
[checkpoint]
dir = $WORK/unused
[layer]
type = dense
units = 64
activation = relu
[layer]
type = dense
units = 8
INI
case=${1:-main}
if [ "$case" = starved ]; then
  [ "$(nproc)" -ge 2 ] || { echo "skipped: 1 CPU, no spare one for a background reader"; exit 77; }
  run_mpi 1 train "$WORK/job.ini" --set checkpoint.dir="$WORK/one" --set data.memory_mb=4 \
    --set train.max_steps=150 > "$WORK/one.log"
  grep -q "reader in the background (idle priority)" "$WORK/one.log" \
    || fail "1 rank on $(nproc) CPUs: the stream's reader is not in the background"
  # its reader starved (the test hook holds it, as another job on the "spare" CPU would):
  # replaced by one at normal priority, with a warning, and the same bits
  MPINET_FAULT=starve-reader:0:1 run_mpi 1 train "$WORK/job.ini" \
    --set checkpoint.dir="$WORK/starved" --set data.memory_mb=4 --set train.max_steps=150 \
    > "$WORK/starved.log" 2>&1
  grep "warning: rank 0: the stream's reader starved at idle priority" "$WORK/starved.log" \
    || fail "the starved background reader was not replaced"
  "$TEST_TOOLS/compare_params" "$WORK/one/ckpt-00000150.h5" "$WORK/starved/ckpt-00000150.h5" --exact
  exit 0
fi
rss() { grep -Eo '"peak_rss_mb": [0-9.]+' "$1/metrics.jsonl" | tail -1 | awk '{print $2}'; }
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/mem" > "$WORK/mem.log"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/stream" --set data.memory_mb=4 > "$WORK/stream.log"
cat "$WORK/stream.log"
grep -q "rank 0 streams rows \[0, 20000)" "$WORK/stream.log" || fail "did not stream"
grep -q "test_acc 100.00%" "$WORK/stream.log" || fail "the streaming run did not learn"
echo "peak RSS per rank: in memory $(rss "$WORK/mem") MB, streaming $(rss "$WORK/stream") MB"
if [ -n "${MPINET_SANITIZED:-}" ]; then
  echo "(ASan build: its allocator and quarantine hold freed memory, RSS is not compared)"
else
  (( $(echo "$(rss "$WORK/mem") - $(rss "$WORK/stream") > (20.5 - 4) / 2" | bc) )) \
    || fail "streaming saves too little memory"
fi

run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/cut" --set data.memory_mb=4 \
  --set train.max_steps=156 > /dev/null
run_mpi 2 train --resume "$WORK/cut" --set train.max_steps=0 > "$WORK/resume.log"
grep -q "resuming from .* at step 156" "$WORK/resume.log" || fail "did not resume"
"$TEST_TOOLS/compare_params" "$WORK/stream/ckpt-00000312.h5" "$WORK/cut/ckpt-00000312.h5" --exact

expect_error 10 "job.ini: \[data\] memory_mb = 4 but global shuffling holds every training row on every rank \(41.0 MB\)" \
  run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/global" --set data.memory_mb=4 \
  --set data.shuffle=global

# 2 unbound ranks have a CPU each to spare from 4 CPUs on
two=$([ "$(nproc)" -ge 4 ] && echo "in the background (idle priority)" || echo "at normal priority")
grep -q "reader $two" "$WORK/stream.log" \
  || fail "2 ranks on $(nproc) CPUs: the stream's reader should run $two"
