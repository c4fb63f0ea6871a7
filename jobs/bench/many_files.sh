#!/usr/bin/env bash
# many_files.sh: shard-mode streaming from 200 small files against the same rows in one file,
# and the node's memory for the rows in global mode with one copy per node against one per
# rank.
#
#   jobs/bench/many_files.sh [REPS] [NP]     (defaults: 5 repetitions, 2 ranks)
#
# Data (h5py, as users have it): 200 files of 100 channel-last uint8 images (32, 32, 3) and
# int64 labels (61 MB of x), and one file with the same 20,000 rows in chunks of 100 rows, so
# both stream the same blocks. Each run trains the MLP 3072-128-10 for 2 epochs in shard mode
# with memory_mb = 8 per rank (under a quarter of a rank's 30 MB), alternately from 200 files
# and from one. Reported per run: samples/s of the second epoch, launch to first step (the
# wall time from before mpirun to the first step's start, metrics.jsonl first_step_unix).
# Then global mode with share_memory true and false: pss_mb (the ranks' PSS summed, the
# node's memory; RSS would count shared pages in every rank). Prints one JSON line per run
# and a summary line with medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-5}
NP=${2:-2}
[ -x build/mpinet ] || jobs/setup.sh > /dev/null
source jobs/bench/binding.sh
export OPENBLAS_NUM_THREADS=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import os, sys
import h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(20000, 32, 32, 3), dtype=np.uint8)
y = rng.integers(0, 10, size=20000)
os.makedirs(os.path.join(d, "many"))
for i in range(200):
    with h5py.File(os.path.join(d, "many", f"shard-{i}.h5"), "w") as f:
        f["images"], f["labels"] = x[i * 100:(i + 1) * 100], y[i * 100:(i + 1) * 100]
        f.attrs["classes"] = 10
with h5py.File(os.path.join(d, "one.h5"), "w") as f:
    f.create_dataset("images", data=x, chunks=(100, 32, 32, 3))
    f.create_dataset("labels", data=y, chunks=(100,))
    f.attrs["classes"] = 10
PY
cat > "$work/job.ini" <<INI
[data]
x = /images
y = /labels
layout = nhwc
shuffle = shard
memory_mb = 8
[train]
epochs = 2
batch = 128
lr = 0.02
momentum = 0.9
progress = lines
[checkpoint]
every_epochs = 0
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
run() { # run NAME ARGS...: one training run; prints its JSON line
  local name=$1; shift
  rm -rf "$work/run"
  local t0; t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  mpirun $(mpirun_placement "$NP") -np "$NP" build/mpinet train "$work/job.ini" \
    --set checkpoint.dir="$work/run" "$@" > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  local m; m=$(tail -1 "$work/run/metrics.jsonl")
  printf '{"bench": "many_files", "run": "%s", "ranks": %s, "samples_per_s": %s, "launch_to_first_step_s": %.3f, "pss_mb": %s, "rss_mb": %s, "open_fds": %s}\n' \
    "$name" "$NP" "$(echo "$m" | field samples_per_s)" \
    "$(echo "$(echo "$m" | field first_step_unix) - $t0" | bc -l)" \
    "$(echo "$m" | field pss_mb)" "$(echo "$m" | field rss_mb)" "$(echo "$m" | field open_fds)" \
    | tee -a "$work/results"
}
for r in $(seq "$REPS"); do
  run files_200 --set data.path="$work/many/shard-*.h5"
  run one_file --set data.path="$work/one.h5"
done
for r in $(seq "$REPS"); do
  for share in true false; do
    run "global_share_$share" --set data.path="$work/one.h5" --set data.shuffle=global \
      --set data.memory_mb=0 --set data.share_memory=$share --set train.epochs=1
  done
done
med() { grep "\"run\": \"$1\"" "$work/results" | field "$2" | median; }
printf '{"summary": "many_files", "ranks": %s, "reps": %s, "files_200_samples_per_s": %s, "one_file_samples_per_s": %s, "files_200_over_one_file": %.3f, "files_200_launch_to_first_step_s": %s, "one_file_launch_to_first_step_s": %s, "global_pss_mb_one_copy_per_node": %s, "global_pss_mb_one_copy_per_rank": %s, "rows_x_mb": 61.4}\n' \
  "$NP" "$REPS" "$(med files_200 samples_per_s)" "$(med one_file samples_per_s)" \
  "$(echo "$(med files_200 samples_per_s) / $(med one_file samples_per_s)" | bc -l)" \
  "$(med files_200 launch_to_first_step_s)" "$(med one_file launch_to_first_step_s)" \
  "$(med global_share_true pss_mb)" "$(med global_share_false pss_mb)"
