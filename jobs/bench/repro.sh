#!/usr/bin/env bash
# repro.sh: what [train] reproducible = true costs, side by side with the normal mode.
#
#   jobs/bench/repro.sh [REPS]            (default 5; medians are reported)
#   MODELS=mlp SHARDS="8" RANKS="1 2" jobs/bench/repro.sh 3
#
# For the MLP and the CNN of jobs/bench/*.ini, at each world size, runs the normal mode and
# the reproducible mode with V = virtual_shards of each of SHARDS, interleaved (normal, V=8,
# V=4, normal, ...) so that the machine's drift hits them alike. Prints one JSON line per
# run, then per (model, ranks, V) the median samples/s of both modes and their ratio, the
# median of each reproducible run's ratio to the normal run just before it (steadier where
# the machine's speed drifts between runs), and whether the reproducible runs gave the same
# parameters (sha256) at every world size.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-5}
jobs/setup.sh > /dev/null
jobs/fashion-data.sh > /dev/null
export OPENBLAS_NUM_THREADS=1
source jobs/bench/binding.sh
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=$work/results.jsonl
declare -A STEPS=([mlp]=1500 [cnn]=40)

field() { grep -Eo "\"$1\": [-0-9.e+]+" | awk '{print $2}'; }

# one MODEL RANKS SHARDS: SHARDS 0 = the normal mode
one() {
  local model=$1 ranks=$2 shards=$3 extra=()
  [ "$shards" -gt 0 ] && extra=(--set train.reproducible=true --set "train.virtual_shards=$shards")
  rm -rf "$work/run"
  # shellcheck disable=SC2046
  mpirun "${root[@]}" $(mpirun_placement "$ranks") -np "$ranks" build/mpinet train "jobs/bench/$model.ini" \
    --set checkpoint.dir="$work/run" --set train.max_steps="${STEPS[$model]}" "${extra[@]}" \
    > "$work/log.txt" 2>&1 || { cat "$work/log.txt" >&2; return 1; }
  local sps; sps=$(tail -1 "$work/run/metrics.jsonl" | field samples_per_s)
  local sha; sha=$(awk '/^parameters sha256/ { print $3 }' "$work/log.txt")
  printf '{"model": "%s", "ranks": %d, "virtual_shards": %d, "samples_per_s": %s, "sha256": "%s"}\n' \
    "$model" "$ranks" "$shards" "$sps" "$sha"
}

for model in ${MODELS:-mlp cnn}; do
  for ranks in ${RANKS:-1 2}; do
    for rep in $(seq "$REPS"); do
      for shards in 0 ${SHARDS:-8 4}; do one "$model" "$ranks" "$shards"; done
    done
  done
done | tee "$results"

echo
awk '
  function get(line, key,   m) { if (match(line, "\"" key "\": [-0-9.e+]+")) { m = substr(line, RSTART, RLENGTH); sub(/.*: /, "", m); return m } return "" }
  function str(line, key,   m) { if (match(line, "\"" key "\": \"[^\"]*\"")) { m = substr(line, RSTART, RLENGTH); sub(/.*: "/, "", m); sub(/"$/, "", m); return m } return "" }
  function med(k, cnt,   i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = sps[k, i] + 0
    for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
  }
  {
    k = str($0, "model") "|" get($0, "ranks") "|" get($0, "virtual_shards")
    n[k]++; sps[k, n[k]] = get($0, "samples_per_s"); keys[k] = 1
    # the ratio to the normal run just before it: both saw about the same machine speed
    pair = str($0, "model") "|" get($0, "ranks")
    if (get($0, "virtual_shards") == 0) last[pair] = get($0, "samples_per_s")
    else { r = "r|" k; n[r]++; sps[r, n[r]] = get($0, "samples_per_s") / last[pair] }
    if (get($0, "virtual_shards") > 0) {
      h = str($0, "model") "|" get($0, "virtual_shards")
      if (!(h in sha)) sha[h] = str($0, "sha256")
      else if (sha[h] != str($0, "sha256")) differs[h] = 1
    }
  }
  END {
    for (k in keys) {
      split(k, p, "|")
      if (p[3] == 0) continue
      base = p[1] "|" p[2] "|0"
      a = med(base, n[base]); b = med(k, n[k]); pr = med("r|" k, n["r|" k])
      printf "{\"model\": \"%s\", \"ranks\": %d, \"virtual_shards\": %d, \"normal_samples_per_s\": %.1f, \"reproducible_samples_per_s\": %.1f, \"reproducible_over_normal\": %.3f, \"slower_by\": %.3f, \"median_pair_slower_by\": %.3f, \"runs\": %d, \"same_sha256_at_every_world_size\": %s}\n", p[1], p[2], p[3], a, b, b / a, 1 - b / a, 1 - pr, n[k], (p[1] "|" p[3]) in differs ? "false" : "true"
    }
  }' "$results" | sort
