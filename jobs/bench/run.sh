#!/usr/bin/env bash
# run.sh: mpinet's benchmark suite, side by side with PyTorch in the same invocation.
#
#   jobs/bench/run.sh [REPS]        (default 3 repetitions; medians are reported)
#   MODELS="mlp cnn" jobs/bench/run.sh   (a subset of: mlp wide-mlp cnn resnet)
#
# For the MLP, the wide MLP and the CNN of jobs/bench/*.ini it measures mpinet at 1 and 2
# ranks (and at 2 ranks with MPI buckets instead of the node's shared memory, with and
# without overlap, and with prefetch off, to show what each buys; and at 1
# rank streaming its data from the file under data.memory_mb = 8, for memory; and at 1 rank
# with half the batch, the per-rank batch of 2 ranks; and at 1 rank bound to one core, as
# `mpirun -np 1` places it, where the prefetch thread has no core of its own: the same CPU
# per rank as each of 2 ranks on 2 cores; and at 1 rank with 2 BLAS threads, unbound
# (`train.threads = 2`, "hybrid": the other way to use the 2 ranks' cores, the large GEMMs
# on OpenBLAS's threads); and, as the "ceiling", two independent 1-rank runs at half the
# batch side by side: 2 ranks with free communication), and Debian's PyTorch (python3-torch;
# skipped with a message when absent) with one thread, in one process and with
# DistributedDataParallel over gloo. Every line it prints is JSON; a table with the ratios
# follows. Figures: samples/s; the step split into data wait, forward, backward,
# communication and optimizer (averaged over the ranks), and of the communication the part
# after the node's last rank arrived at the sum ("after last": what every rank waited for;
# the rest of it an early rank spent adding what was ready or waiting); achieved GFLOP/s
# against the SGEMM rate measured right before and after each run (the mean of the two: the
# machine's speed drifts over the suite; the rate at its start is printed too); peak RSS per
# rank (mpinet: the largest rank's over the whole run, its final evaluation and checkpoint
# included, from RUN_DIR/finished; PyTorch: getrusage at the end of its training loop, which
# writes no checkpoint); launch-to-first-step time.
#
# Placement: every multi-rank run (mpinet's and DDP's) is bracketed by two probes of the
# first two CPUs (build/mpinet_core_latency: a cache line's round trip between them, and how
# much they slow each other down). A VM's host may, for seconds at a time, run its vCPUs on
# distant cores (on the development machine ~350 ns instead of ~60: every cache line one
# rank hands the other costs 5x, and a 2-rank MLP run falls to ~40% of its rate while its
# compute keeps its speed) or on one core. A run whose probes read more than twice the
# shortest round trip seen in this invocation, or a slowdown over 1.5, is marked
# "disturbed": true and repeated (up to BENCH_DISTURBED_RETRIES times, default 2); the
# medians leave disturbed runs out whenever a configuration has others, and the table's
# "dist" column counts them ("all": every run of it was disturbed; the medians are theirs).
#
# To check the suite itself quickly (tests/bench_smoke.sh): BENCH_MPINET, BENCH_SGEMM (the
# binaries, default build/mpinet and build/mpinet_sgemm_peak; the probe is looked for next to
# the latter), BENCH_DATA (an HDF5 dataset instead of Fashion-MNIST; then nothing is
# installed, built or converted first), BENCH_STEPS (steps of every run), BENCH_TORCH=0 (no
# PyTorch) and BENCH_FAR_NS (the round trip in ns above which a run counts as disturbed).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
mpinet=${BENCH_MPINET:-build/mpinet}
sgemm_peak=${BENCH_SGEMM:-build/mpinet_sgemm_peak}
core_latency=$(dirname "$sgemm_peak")/mpinet_core_latency
data=()
if [ -n "${BENCH_DATA:-}" ]; then
  data=(--set data.path="$BENCH_DATA")
else
  jobs/setup.sh > /dev/null
  jobs/fashion-data.sh > /dev/null
fi
export OPENBLAS_NUM_THREADS=1
source jobs/bench/binding.sh
flags=()
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=$work/results.jsonl

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
field() { grep -Eo "\"$1\": [-0-9.e+]+" | awk '{print $2}'; }

sgemm=$(for i in 1 2 3; do "$sgemm_peak" 1024 | field sgemm_gflops; done | median)
echo "{\"sgemm_gflops\": $sgemm, \"threads\": 1}" | tee -a "$results"

# The placement probe (jobs/bench/core_latency.c) prints "round-trip-ns slowdown", or nothing
# with one CPU (nothing to probe). A run is disturbed when the round trip exceeds twice the
# shortest seen so far in this suite (or BENCH_FAR_NS) or the two CPUs slow each other down
# by more than half.
probe() { "$core_latency" | awk '/"cross_core_ns": [0-9]/ {gsub(/[,{}]/, ""); print $2, $4}'; }
nearest=$work/nearest_ns
for i in 1 2 3 4 5; do probe; sleep 0.2; done | sort -g | head -1 | awk '{print $1}' > "$nearest"
if [ -s "$nearest" ]; then
  echo "{\"cross_core_ns_nearest\": $(cat "$nearest")}" | tee -a "$results"
fi

# placed CMD...: CMD prints one JSON line for a multi-rank run; it runs between two probes
# and its line gets the worse readings and whether they were disturbed; a disturbed run is
# repeated (BENCH_DISTURBED_RETRIES times at most, default 2).
placed() {
  local line before after verdict near_now ns slow disturbed
  for _ in $(seq 0 "${BENCH_DISTURBED_RETRIES:-2}"); do
    before=$(probe)
    line=$("$@") || return 1
    after=$(probe)
    if [ -z "$before" ] || [ -z "$after" ]; then echo "$line"; return 0; fi
    verdict=$(echo "$before $after $(cat "$nearest")" | awk -v far="${BENCH_FAR_NS:-0}" '{
      ns = $1 > $3 ? $1 : $3; slow = $2 > $4 ? $2 : $4; near = $5 < $1 ? $5 : $1; near = near < $3 ? near : $3
      limit = far > 0 ? far : 2 * near
      printf "%d %d %.2f %s\n", near, ns, slow, (ns > limit || slow > 1.5) ? "true" : "false" }')
    read -r near_now ns slow disturbed <<< "$verdict"
    echo "$near_now" > "$nearest"
    echo "${line%\}}, \"cross_core_ns\": $ns, \"pair_slowdown\": $slow, \"disturbed\": $disturbed}"
    [ "$disturbed" = false ] && return 0
  done
  return 0 # every try was disturbed: the lines say so
}

# Floating-point work per sample of a training step (forward 2·MACs, backward 4·MACs except
# the first layer's input gradient, which is never computed).
declare -A FLOPS=(
  [mlp]=$(( 2 * (784*256 + 256*128 + 128*10) + 4 * (256*128 + 128*10) + 2 * 784*256 ))
  [wide-mlp]=$(( 2 * (784*1024 + 1024*1024 + 1024*10) + 4 * (1024*1024 + 1024*10) + 2 * 784*1024 ))
  [cnn]=$(( 2 * (25*784*32 + 800*196*64 + 3136*1024 + 1024*10) + 2 * 25*784*32 + 4 * (800*196*64 + 3136*1024 + 1024*10) ))
  # ResNet-20 (padding 1): 31,021,952 multiply-adds a sample, 112,896 of them the stem's
  [resnet]=$(( 6 * 31021952 - 2 * 112896 ))
)
declare -A STEPS=([mlp]=1500 [wide-mlp]=150 [cnn]=40 [resnet]=20)
declare -A TORCH_STEPS=([mlp]=1500 [wide-mlp]=150 [cnn]=40 [resnet]=20)
if [ -n "${BENCH_STEPS:-}" ]; then
  for m in "${!STEPS[@]}"; do STEPS[$m]=$BENCH_STEPS TORCH_STEPS[$m]=$BENCH_STEPS; done
fi

ini_batch() { awk -F= '$1 ~ /^batch *$/ {gsub(/ /, "", $2); print $2; exit}' "jobs/bench/$1.ini"; }

# mpinet MODEL RANKS VARIANT: one run; prints a JSON line
mpinet_run() {
  local model=$1 ranks=$2 variant=$3 extra=() steps=${STEPS[$1]}
  case $variant in
  half-batch) # the per-rank batch of 2 ranks, alone: what the smaller batch costs by itself
    extra=(--set train.batch=$(($(ini_batch "$model") / 2)))
    steps=$((steps * 2)) ;;
  mpi) extra=(--set train.allreduce=mpi) ;; # MPI buckets instead of the node's shared memory
  mpi-no-overlap) extra=(--set train.allreduce=mpi --set train.overlap=false) ;;
  no-prefetch) extra=(--set data.prefetch=false) ;;
  hybrid) extra=(--set train.threads=2) ;; # 1 rank on the CPUs of 2: threads instead of ranks
  stream) extra=(--set data.shuffle=shard --set data.memory_mb=8) ;; # rows from the file
  esac
  local placement; placement=$(mpirun_placement "$ranks")
  [ "$variant" = one-core ] && placement="--bind-to core" # one CPU: no prefetch thread
  rm -rf "$work/run"
  # the SGEMM rate right before and after the run: the machine's speed drifts over the
  # suite's half hour, and a rate from its start would read as the run's own efficiency
  local peak_before peak_after
  peak_before=$("$sgemm_peak" 1024 | field sgemm_gflops)
  local launch; launch=$(date +%s.%N)
  # shellcheck disable=SC2046
  mpirun "${flags[@]}" $placement -np "$ranks" "$mpinet" train "jobs/bench/$model.ini" \
    --set checkpoint.dir="$work/run" --set train.max_steps="$steps" "${data[@]}" \
    "${extra[@]}" > "$work/log.txt" 2>&1 \
    || { cat "$work/log.txt" >&2; return 1; }
  peak_after=$("$sgemm_peak" 1024 | field sgemm_gflops)
  local m; m=$(tail -1 "$work/run/metrics.jsonl")
  local sps; sps=$(echo "$m" | field samples_per_s)
  local secs; secs=$(echo "$m" | field train_seconds)
  local first; first=$(echo "$m" | field first_step_unix)
  awk -v model="$model" -v ranks="$ranks" -v variant="$variant" -v sps="$sps" -v secs="$secs" \
      -v flops="${FLOPS[$model]}" -v peak_before="$peak_before" -v peak_after="$peak_after" -v launch="$launch" -v first="$first" \
      -v data="$(echo "$m" | field time_data_s)" -v fwd="$(echo "$m" | field time_forward_s)" \
      -v bwd="$(echo "$m" | field time_backward_s)" -v comm="$(echo "$m" | field time_comm_s)" \
      -v before="$(echo "$m" | field time_comm_before_last_s)" \
      -v opt="$(echo "$m" | field time_optimizer_s)" -v rss="$(awk '/^peak_rss_mb/ {print $2}' "$work/run/finished")" \
      -v bucket="$(echo "$m" | field bucket_mb)" \
      -v prefetch="$(grep -Eo 'prefetch (on|off)' "$work/log.txt" | head -1 | cut -d' ' -f2)" \
      -v cpus="$(grep -Eo 'prefetch [^(]*\([0-9]+ CPU' "$work/log.txt" | head -1 | grep -Eo '[0-9]+ CPU' | cut -d' ' -f1)" \
      -v threads="$(grep -Eo '[0-9]+ BLAS threads? per rank' "$work/log.txt" | head -1 | cut -d' ' -f1)" 'BEGIN {
    gf = sps * flops / 1e9
    peak = (peak_before + peak_after) / 2
    printf "{\"impl\": \"mpinet\", \"model\": \"%s\", \"ranks\": %d, \"variant\": \"%s\", ", model, ranks, variant
    printf "\"samples_per_s\": %.1f, \"gflops\": %.2f, \"sgemm_gflops_near\": %.1f, \"sgemm_fraction\": %.3f, ", sps, gf, peak, gf / (peak * ranks)
    printf "\"data_frac\": %.4f, \"forward_frac\": %.4f, \"backward_frac\": %.4f, \"comm_frac\": %.4f, \"optimizer_frac\": %.4f, ", data / secs, fwd / secs, bwd / secs, comm / secs, opt / secs
    # the comm phase after the node'"'"'s last rank arrived (null where not measured: MPI buckets)
    printf "\"comm_after_last_frac\": %s, ", before == "" ? "null" : sprintf("%.4f", (comm - before) / secs)
    printf "\"peak_rss_mb\": %.1f, \"bucket_mb\": %s, \"launch_to_first_step_s\": %.3f, ", rss, bucket, first - launch
    printf "\"cpus_per_rank\": %d, \"blas_threads\": %d, \"prefetch\": \"%s\"}\n", cpus, threads, prefetch
  }'
}

# The first N CPUs this shell may run on.
first_cpus() {
  local list part c out=()
  list=$(taskset -cp $$ | sed 's/.*: //')
  for part in ${list//,/ }; do
    if [[ $part == *-* ]]; then
      for ((c = ${part%-*}; c <= ${part#*-}; c++)); do out+=("$c"); done
    else out+=("$part"); fi
  done
  echo "${out[@]:0:$1}"
}

# ceiling_run MODEL: what 2 ranks would reach if communication were free. Two independent
# 1-rank runs at the per-rank batch (half the global one), side by side, one per core; prints
# their summed samples/s. On a 2-core machine this is below twice the 1-rank rate: the two
# cores share caches, memory bandwidth and clock, and each step's batch is half as large (on
# the development machine the smaller batch is nearly all of it: compare the "1 half-batch"
# run; per-step work such as the optimizer's pass is then spread over half the samples).
ceiling_run() {
  local model=$1 batch cpus total=0 i sps pids=()
  batch=$(ini_batch "$model")
  read -r -a cpus <<< "$(first_cpus 2)"
  for i in 0 1; do
    rm -rf "$work/ceiling$i"
    taskset -c "${cpus[$i]}" "$mpinet" train "jobs/bench/$model.ini" --set checkpoint.dir="$work/ceiling$i" \
      --set train.max_steps="${STEPS[$model]}" --set train.batch=$((batch / 2)) "${data[@]}" \
      > "$work/ceiling$i.txt" 2>&1 &
    pids+=($!)
  done
  for i in 0 1; do wait "${pids[$i]}" || { cat "$work/ceiling$i.txt" >&2; return 1; }; done
  for i in 0 1; do
    sps=$(tail -1 "$work/ceiling$i/metrics.jsonl" | field samples_per_s)
    total=$(awk -v a="$total" -v b="$sps" 'BEGIN {print a + b}')
  done
  printf '{"impl": "ceiling", "model": "%s", "ranks": 2, "variant": "default", "samples_per_s": %.1f}\n' "$model" "$total"
}

# Repetitions are interleaved (every configuration once, then again): the machine's slow
# stretches last seconds to minutes, and would otherwise fall on whole configurations.
have_torch=0
if [ "${BENCH_TORCH:-1}" = 0 ]; then
  echo '{"skipped": "pytorch", "why": "BENCH_TORCH=0"}' | tee -a "$results"
elif /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  have_torch=1
else
  echo "{\"skipped\": \"pytorch\", \"why\": \"python3-torch is not installed (apt-get install python3-torch)\"}" | tee -a "$results"
fi
for model in ${MODELS:-mlp wide-mlp cnn resnet}; do
  for rep in $(seq "$REPS"); do
    for config in "1 default" "1 one-core" "1 stream" "1 half-batch" "1 hybrid" "2 default" "2 mpi" "2 mpi-no-overlap" "2 no-prefetch"; do
      set -- $config
      if [ "$1" -gt 1 ]; then placed mpinet_run "$model" "$1" "$2"; else mpinet_run "$model" "$1" "$2"; fi \
        | tee -a "$results"
    done
    if [ "$(first_cpus 2 | wc -w)" = 2 ]; then ceiling_run "$model" | tee -a "$results"; fi
    if [ "$have_torch" = 1 ]; then
      /usr/bin/python3 jobs/bench/torch_bench.py "$model" 1 "${TORCH_STEPS[$model]}" | tee -a "$results"
      placed /usr/bin/python3 jobs/bench/torch_bench.py "$model" 2 "${TORCH_STEPS[$model]}" | tee -a "$results"
    fi
  done
done

# The summary: medians per (impl, model, ranks, variant), disturbed runs left out where the
# configuration has others, and the ratios the issue asks for.
echo
awk '
  function get(line, key,   m) { if (match(line, "\"" key "\": [-0-9.e+]+")) { m = substr(line, RSTART, RLENGTH); sub(/.*: /, "", m); return m } return "" }
  function str(line, key,   m) { if (match(line, "\"" key "\": \"[^\"]*\"")) { m = substr(line, RSTART, RLENGTH); sub(/.*: "/, "", m); sub(/"$/, "", m); return m } return "" }
  function key(line) { return str(line, "impl") "|" str(line, "model") "|" get(line, "ranks") "|" (str(line, "variant") == "" ? "default" : str(line, "variant")) }
  NR == FNR { if (/"samples_per_s"/ && !/"disturbed": true/) calm[key($0)]++; next }
  /"samples_per_s"/ && /"disturbed": true/ && calm[key($0)] > 0 { left_out[key($0)]++; next }
  /"samples_per_s"/ {
    k = key($0)
    n[k]++; sps[k, n[k]] = get($0, "samples_per_s"); rss[k, n[k]] = get($0, "peak_rss_mb")
    comm[k, n[k]] = get($0, "comm_frac"); data[k, n[k]] = get($0, "data_frac"); frac[k, n[k]] = get($0, "sgemm_fraction")
    after[k, n[k]] = get($0, "comm_after_last_frac")
    first[k, n[k]] = get($0, "launch_to_first_step_s"); keys[k] = 1
  }
  function med(arr, k, cnt,   i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = arr[k, i] + 0
    for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
  }
  END {
    printf "%-8s %-9s %5s %-12s %12s %17s %9s %8s %10s %8s %10s %9s %4s\n", "impl", "model", "ranks", "variant", "samples/s", "(runs min-max)", "of SGEMM", "comm", "after last", "data", "RSS MiB", "1st step", "dist"
    nk = 0
    for (k in keys) order[++nk] = k
    for (i = 1; i <= nk; i++) for (j = i + 1; j <= nk; j++) if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
    for (i = 1; i <= nk; i++) {
      k = order[i]
      split(k, p, "|"); m[k] = med(sps, k, n[k])
      r = med(rss, k, n[k]); rs = r > 0 ? sprintf("%.0f", r) : ""
      lo = hi = sps[k, 1] + 0
      for (j = 2; j <= n[k]; j++) { v = sps[k, j] + 0; if (v < lo) lo = v; if (v > hi) hi = v }
      printf "%-8s %-9s %5s %-12s %12.0f %17s %9s %8s %10s %8s %10s %9s %4s\n", p[1], p[2], p[3], p[4], m[k], sprintf("%.0f-%.0f", lo, hi),
        p[1] == "mpinet" ? sprintf("%.0f%%", 100 * med(frac, k, n[k])) : "", p[1] == "mpinet" ? sprintf("%.1f%%", 100 * med(comm, k, n[k])) : "",
        p[1] == "mpinet" && after[k, 1] != "" ? sprintf("%.1f%%", 100 * med(after, k, n[k])) : "",
        p[1] == "mpinet" ? sprintf("%.2f%%", 100 * med(data, k, n[k])) : "", rs, p[1] == "mpinet" ? sprintf("%.2fs", med(first, k, n[k])) : "",
        (calm[k] > 0 ? (left_out[k] > 0 ? left_out[k] : "") : "all")
    }
    print ""
    nm = split("mlp wide-mlp cnn resnet", models, " ")
    for (i = 1; i <= nm; i++) {
      mo = models[i]; if (!(("mpinet|" mo "|1|default") in m)) continue
      a1 = m["mpinet|" mo "|1|default"]; a2 = m["mpinet|" mo "|2|default"]
      t1 = m["pytorch|" mo "|1|default"]; t2 = m["pytorch|" mo "|2|default"]
      printf "{\"ratios\": \"%s\", \"mpinet2_over_mpinet1\": %.3f", mo, a2 / a1
      if (t1 > 0) printf ", \"mpinet1_over_torch1\": %.3f, \"mpinet2_over_torch_ddp2\": %.3f, \"torch_rss_over_mpinet_rss\": %.2f", a1 / t1, a2 / t2, med(rss, "pytorch|" mo "|1|default", n["pytorch|" mo "|1|default"]) / med(rss, "mpinet|" mo "|1|default", n["mpinet|" mo "|1|default"])
      if (t1 > 0 && ("mpinet|" mo "|1|stream") in m) printf ", \"torch_rss_over_mpinet_stream_rss\": %.2f, \"stream_over_memory\": %.3f", med(rss, "pytorch|" mo "|1|default", n["pytorch|" mo "|1|default"]) / med(rss, "mpinet|" mo "|1|stream", n["mpinet|" mo "|1|stream"]), m["mpinet|" mo "|1|stream"] / a1
      c2 = m["ceiling|" mo "|2|default"]
      if (c2 > 0) printf ", \"ceiling2_over_mpinet1\": %.3f, \"mpinet2_over_ceiling2\": %.3f", c2 / a1, a2 / c2
      o1 = m["mpinet|" mo "|1|one-core"]
      if (o1 > 0) printf ", \"mpinet2_over_mpinet1_one_core\": %.3f, \"prefetch_gain_1\": %.3f", a2 / o1, a1 / o1
      h1 = m["mpinet|" mo "|1|half-batch"]
      if (h1 > 0) printf ", \"twice_half_batch_over_mpinet1\": %.3f", 2 * h1 / a1
      y1 = m["mpinet|" mo "|1|hybrid"]
      if (y1 > 0) printf ", \"hybrid_over_mpinet2\": %.3f", y1 / a2
      if (y1 > 0 && o1 > 0) printf ", \"hybrid_over_mpinet1_one_core\": %.3f", y1 / o1
      printf ", \"node_gain\": %.3f, \"overlap_gain\": %.3f, \"prefetch_gain\": %.3f}\n", a2 / m["mpinet|" mo "|2|mpi"], m["mpinet|" mo "|2|mpi"] / m["mpinet|" mo "|2|mpi-no-overlap"], a2 / m["mpinet|" mo "|2|no-prefetch"]
    }
  }' "$results" "$results"
