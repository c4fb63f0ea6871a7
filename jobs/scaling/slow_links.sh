#!/usr/bin/env bash
# slow_links.sh: time to a test accuracy (default 88%) on Fashion-MNIST with plain synchronous
# SGD, [train] grad_compression = bf16 and [train] sync_every = K, the same global batch and
# seeds, all in one invocation (runs interleaved seed by seed, so drift hits every mode alike).
#
#   jobs/scaling/slow_links.sh hosts [RATE]        2 emulated hosts (jobs/emulate/hosts.sh,
#                                                  root), one rank each, links shaped to RATE
#                                                  (default 100mbit); jobs/fashion-mlp.ini as
#                                                  shipped (batch 128); a run is stopped
#                                                  (SIGTERM) once it reaches the target
#   jobs/scaling/slow_links.sh summary CASE        the medians again from OUT/CASE.jsonl (after
#                                                  seeds run by separate invocations were
#                                                  appended to it)
#   jobs/scaling/slow_links.sh simulate RANKS      build-sim/mpinet-sim on $PLATFORM (default
#                                                  10 GbE), cores at the calibrated speed; shard
#                                                  mode, global batch $SIM_BATCH (1024) split
#                                                  over RANKS, lr $SIM_LR (0.2), cosine over
#                                                  $SIM_EPOCHS (20) epochs, cut at
#                                                  $SIM_MAX_STEPS if set; times are simulated
#                                                  seconds
# Environment: SEEDS ("1 2 3"), MODES ("sync bf16 local"), K (16: sync_every of the local
# mode), WARMUP (0: its sync_warmup_epochs), TARGET (0.88), EVAL_EVERY (100 steps; simulated:
# 29, half an epoch), OUT (jobs/scaling/results/slow_links).
# Output: one JSON line per run, then one summary line per mode (medians over the seeds,
# speed-up = sync's median time / the mode's); written to OUT/<case>.jsonl as well, with each
# run's metrics.jsonl in OUT/<case>/. Over emulated hosts, an Open MPI TCP eager limit set by
# OMPI_MCA_btl_tcp_eager_limit is part of the case's name (hosts2-100mbit-eager2097152).
# time_to_target_s is the wall (or simulated) clock of the first evaluation at or above TARGET,
# start-up and evaluations included; train_time_to_target_s adds up the training steps' time
# alone (metrics' train_seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."
where=${1:?hosts [RATE] | simulate RANKS | summary CASE}
SEEDS=${SEEDS:-1 2 3}
MODES=${MODES:-sync bf16 local}
K=${K:-16}
WARMUP=${WARMUP:-0}
TARGET=${TARGET:-0.88}
OUT=${OUT:-jobs/scaling/results/slow_links}
# medians over the seeds of each mode in $1 (OUT/<case>.jsonl), into OUT/<case>.summary.jsonl
summarize() {
  /usr/bin/python3 - "$1" <<'PY' | tee "${1%.jsonl}.summary.jsonl"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(mode, key="time_to_target_s"):
    t = [r.get(key) for r in rows if r["mode"] == mode]
    return statistics.median(t) if t and None not in t else None
base, base_train = med("sync"), med("sync", "train_time_to_target_s")
for mode in dict.fromkeys(r["mode"] for r in rows):
    m, mt = med(mode), med(mode, "train_time_to_target_s")
    print(json.dumps({"case": rows[0]["case"], "mode": mode, "target": rows[0]["target"],
                      "median_time_to_target_s": m,
                      "runs": [r["time_to_target_s"] for r in rows if r["mode"] == mode],
                      "speedup_vs_sync": round(base / m, 3) if base and m else None,
                      "median_train_time_to_target_s": mt,
                      "train_speedup_vs_sync": round(base_train / mt, 3) if base_train and mt else None}))
PY
}

if [ "$where" = summary ]; then
  summarize "$OUT/${2:?summary CASE}.jsonl"
  exit 0
fi
CONFIG=jobs/fashion-mlp.ini
DATA=$PWD/data/fashion-mnist.h5
[ -f "$DATA" ] || { echo "slow_links.sh: no $DATA (jobs/fashion-data.sh)" >&2; exit 1; }
work=$(mktemp -d /tmp/slow_links.XXXXXX)
mkdir -p "$OUT"
case $where in
hosts)
  RATE=${2:-100mbit}
  EVAL_EVERY=${EVAL_EVERY:-100}
  case_name=hosts2-$RATE${OMPI_MCA_btl_tcp_eager_limit:+-eager$OMPI_MCA_btl_tcp_eager_limit}
  [ -x build/mpinet ] || { echo "slow_links.sh: build/mpinet missing" >&2; exit 1; }
  jobs/emulate/hosts.sh up 2 "$RATE" > /dev/null
  trap 'jobs/emulate/hosts.sh down; rm -rf "$work"' EXIT
  ;;
simulate)
  RANKS=${2:?simulate RANKS}
  PLATFORM=${PLATFORM:-jobs/scaling/platforms/10gbe.xml}
  SIM_BATCH=${SIM_BATCH:-1024}
  SIM_LR=${SIM_LR:-0.2}
  SIM_EPOCHS=${SIM_EPOCHS:-20}
  SIM_MAX_STEPS=${SIM_MAX_STEPS:-0} # > 0: stop there (the schedule stays SIM_EPOCHS long)
  EVAL_EVERY=${EVAL_EVERY:-29} # half an epoch
  case_name=sim$RANKS-$(basename "$PLATFORM" .xml)
  [ -x build-sim/mpinet-sim ] || { echo "slow_links.sh: build-sim/mpinet-sim missing (jobs/setup.sh)" >&2; exit 1; }
  # shellcheck source=/dev/null
  source jobs/scaling/platforms/calibration.txt
  source jobs/scaling/smpi.sh
  sim_platform "$PLATFORM" "$work/platform.xml"
  sim_hosts "$work/simhosts"
  trap 'rm -rf "$work"' EXIT
  ;;
*) echo "usage: slow_links.sh hosts [RATE] | simulate RANKS | summary CASE" >&2; exit 2 ;;
esac

mode_args() {
  case $1 in
  sync) ;;
  bf16) echo "--set train.grad_compression=bf16 --set train.allreduce=mpi" ;;
  fp16) echo "--set train.grad_compression=fp16 --set train.allreduce=mpi" ;;
  local) echo "--set train.sync_every=$K --set train.sync_warmup_epochs=$WARMUP" ;;
  esac
}

# the first evaluation at or above TARGET: "wall_s train_s step epochs", or "null" x 4
reached() {
  /usr/bin/python3 - "$1" "$TARGET" <<'PY'
import json, sys
train = 0.0
for line in open(sys.argv[1]):
    m = json.loads(line)
    train += m.get("train_seconds") or 0.0
    if m.get("test_accuracy") is not None and m["test_accuracy"] >= float(sys.argv[2]):
        print(m["wall_s"], round(train, 4), m["step"], m["epoch_progress"]); break
else:
    print("null null null null")
PY
}

results=$OUT/$case_name.jsonl
: > "$results"
for seed in $SEEDS; do
  for mode in $MODES; do
    run=$work/run-$mode-$seed
    # shellcheck disable=SC2046
    args=(train "$CONFIG" --set checkpoint.dir="$run" --set train.seed="$seed"
      --set train.eval_every_steps="$EVAL_EVERY" --set checkpoint.every_epochs=0
      --set train.progress=lines --set data.path="$DATA" $(mode_args "$mode"))
    start=$(date +%s.%N)
    if [ "$where" = hosts ]; then
      jobs/emulate/hosts.sh mpirun -np 2 "$PWD/build/mpinet" "${args[@]}" > "$work/log" 2>&1 &
      pid=$!
      # stop the run once it has reached the target: every rank checkpoints and exits 75
      while kill -0 "$pid" 2> /dev/null; do
        if [ -f "$run/metrics.jsonl" ] && [ "$(reached "$run/metrics.jsonl" | cut -d' ' -f1)" != null ]; then
          pkill -TERM -f -- "checkpoint.dir=$run" || true
          break
        fi
        sleep 0.5
      done
      wait "$pid" || true
    else
      sim_run "$RANKS" "$work/platform.xml" "$work/simhosts" "${args[@]}" \
        --set data.shuffle=shard --set train.batch="$SIM_BATCH" \
        --set train.lr="$SIM_LR" --set train.epochs="$SIM_EPOCHS" \
        --set train.max_steps="$SIM_MAX_STEPS" > "$work/log" 2>&1 \
        || { tail -5 "$work/log" >&2; exit 1; }
    fi
    took=$(echo "$(date +%s.%N) - $start" | bc)
    [ -s "$run/metrics.jsonl" ] || { tail -20 "$work/log" >&2; exit 1; }
    read -r t train_t step epochs < <(reached "$run/metrics.jsonl")
    mkdir -p "$OUT/$case_name"
    cp "$run/metrics.jsonl" "$OUT/$case_name/$mode-$seed.metrics.jsonl"
    best=$(/usr/bin/python3 -c 'import json,sys; print(max(json.loads(l)["test_accuracy"] or 0 for l in open(sys.argv[1])))' "$run/metrics.jsonl")
    extra=""
    [ "$mode" != local ] || extra=", \"sync_every\": $K, \"sync_warmup_epochs\": $WARMUP"
    line="{\"case\": \"$case_name\", \"mode\": \"$mode\", \"seed\": $seed, \"target\": $TARGET, \"time_to_target_s\": $t, \"train_time_to_target_s\": $train_t, \"step\": $step, \"epochs\": $epochs, \"best_accuracy\": $best, \"wall_of_run_s\": $took$extra}"
    echo "$line" | tee -a "$results"
  done
done
summarize "$results"
