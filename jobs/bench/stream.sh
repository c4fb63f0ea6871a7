#!/usr/bin/env bash
# stream.sh: shard-mode streaming ([data] memory_mb) against holding the shard in memory.
#
#   jobs/bench/stream.sh [REPS] [MEMORY_MB]     (defaults: 5 repetitions, a 32 MB cap)
#
# A synthetic dataset of 60,000 rows x 784 float32 features (188 MB of x, about six times
# the cap) trains the MLP 784-256-128-10 for one epoch at 1 rank, alternately in memory and
# streamed. Prints one JSON line per run and a summary line: median samples/s of each, their
# ratio, median peak RSS of each, and the data wait.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-5}
CAP=${2:-32}
[ -x build/mpinet ] || jobs/setup.sh > /dev/null
export OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/mpinet convert synthetic -o "$work/s.h5" --kind blobs --train 60000 --test 1000 \
  --features 784 --classes 10 > /dev/null
cat > "$work/job.ini" <<INI
[data]
path = $work/s.h5
shuffle = shard
[train]
epochs = 1
batch = 128
lr = 0.05
momentum = 0.9
progress = lines
[checkpoint]
dir = $work/run
every_epochs = 0
[layer]
type = dense
units = 256
activation = relu
[layer]
type = dense
units = 128
activation = relu
[layer]
type = dense
units = 10
INI
field() { grep -Eo "\"$1\": [-0-9.e+]+" | awk '{print $2}'; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for r in $(seq "$REPS"); do
  for mode in memory stream; do
    rm -rf "$work/run"
    mem=$([ $mode = memory ] && echo 0 || echo "$CAP")
    build/mpinet train "$work/job.ini" --set data.memory_mb="$mem" > "$work/log" 2>&1 \
      || { cat "$work/log" >&2; exit 1; }
    m=$(tail -1 "$work/run/metrics.jsonl")
    printf '{"bench": "stream", "mode": "%s", "memory_mb": %s, "samples_per_s": %s, "peak_rss_mb": %s, "data_wait_s": %s, "train_seconds": %s}\n' \
      "$mode" "$mem" "$(echo "$m" | field samples_per_s)" "$(echo "$m" | field peak_rss_mb)" \
      "$(echo "$m" | field time_data_s)" "$(echo "$m" | field train_seconds)" | tee -a "$work/results"
  done
done
med() { grep "\"mode\": \"$1\"" "$work/results" | field "$2" | median; }
printf '{"summary": "stream", "dataset_x_mb": 188.2, "memory_mb": %s, "memory_samples_per_s": %s, "stream_samples_per_s": %s, "stream_over_memory": %.3f, "memory_peak_rss_mb": %s, "stream_peak_rss_mb": %s, "memory_data_wait_s": %s, "stream_data_wait_s": %s}\n' \
  "$CAP" "$(med memory samples_per_s)" "$(med stream samples_per_s)" \
  "$(echo "$(med stream samples_per_s) / $(med memory samples_per_s)" | bc -l)" \
  "$(med memory peak_rss_mb)" "$(med stream peak_rss_mb)" "$(med memory data_wait_s)" "$(med stream data_wait_s)"
