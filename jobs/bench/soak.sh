#!/usr/bin/env bash
# soak.sh [EPOCHS] [NP]: trains jobs/fashion-mlp.ini for many epochs (default 40, 2 ranks),
# checkpointing every epoch, and checks that nothing accumulates: resident memory, open file
# descriptors and open HDF5 objects, as recorded per epoch in metrics.jsonl (largest over
# ranks). Prints one JSON line; exits 1 if anything grew after the first two epochs.
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=${1:-40}
np=${2:-2}
jobs/setup.sh > /dev/null
[ -f data/fashion-mnist.h5 ] || { echo "soak: run jobs/quickstart.sh once to prepare data/" >&2; exit 1; }
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
run=$(mktemp -d)/run
trap 'rm -rf "$(dirname "$run")"' EXIT
OPENBLAS_NUM_THREADS=1 mpirun "${flags[@]}" -np "$np" build/mpinet train jobs/fashion-mlp.ini \
  --set checkpoint.dir="$run" --set train.epochs="$epochs" --set train.schedule=constant \
  --set train.progress=lines --set train.progress_seconds=1000 > /dev/null
awk -v epochs="$epochs" '
  function get(key,   m) { if (match($0, "\"" key "\": [-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0 } return -1 }
  { e = get("epoch"); rss[e] = get("rss_mb"); fds[e] = get("open_fds"); h5[e] = get("hdf5_objects") }
  END {
    grow_rss = rss[epochs] - rss[3]; grow_fds = fds[epochs] - fds[3]; h5max = 0
    for (e = 1; e <= epochs; e++) if (h5[e] > h5max) h5max = h5[e]
    ok = grow_rss <= 1.0 && grow_fds == 0 && h5max == 0
    printf "{\"soak_epochs\": %d, \"rss_mb_epoch3\": %.1f, \"rss_mb_last\": %.1f, \"open_fds_epoch3\": %d, \"open_fds_last\": %d, \"max_hdf5_objects\": %d, \"flat\": %s}\n", epochs, rss[3], rss[epochs], fds[3], fds[epochs], h5max, ok ? "true" : "false"
    exit ok ? 0 : 1
  }' "$run/metrics.jsonl"
