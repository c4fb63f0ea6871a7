#!/usr/bin/env bash
# run.sh: strong- and weak-scaling sweeps of mpinet, written as CSV and drawn with gnuplot.
#
#   jobs/scaling/run.sh [local] [hosts] [slurm] [simulate] [calibrate]   (default: local)
#   jobs/scaling/run.sh plot      redraws $OUT/scaling.png from $OUT/scaling.csv
#
#   local   world sizes $RANKS (default "1 2") on this machine, mpirun
#   hosts   1..$HOSTS (default 3) emulated hosts, one rank each (jobs/emulate/hosts.sh; root;
#           $RATE, e.g. 1gbit, shapes the links)
#   slurm   one sbatch job per world size in $RANKS through jobs/slurm/train.sbatch
#           (--ntasks=N; add SBATCH_ARGS="--nodes=4 --ntasks-per-node=8 ..." on a real
#           cluster; SLURM_CONF must point at the cluster, e.g. jobs/slurm/minicluster.sh's)
#   simulate  world sizes $SIM_RANKS (default "1 2 4 8 16 32 64") simulated by SimGrid
#           (build-sim/mpinet-sim under smpirun) on $PLATFORM (default
#           jobs/scaling/platforms/10gbe.xml: 16-core nodes), cores at the calibrated speed of
#           jobs/scaling/platforms/calibration.txt; shard mode on a synthetic set of $SIM_ROWS
#           (default 131072: 1024 ranks x 128; more rows cost each epoch's shuffle more than a
#           short run amortises) Fashion-MNIST-shaped rows (uint8 (1, 28, 28)), $SIM_STEPS
#           (default 20) steps a run; TIMING_ONLY=1 simulates
#           without training (mpi/sim.h: shared parameter buffers, forward and backward
#           computed by rank 0 alone), for world sizes whose ranks do not fit in memory
#           together; its rows are marked "simulate-timing" in the CSV
#   calibrate  the one calibration (jobs/scaling/platforms/README.md): the 1-rank case
#           measured and simulated; writes jobs/scaling/platforms/calibration.txt
#
# Strong scaling keeps the global batch at $BATCH (default 384, divisible by 1-4, 6, 8, 12, 16) whatever the world size;
# weak scaling keeps $BATCH_PER_RANK (default 128) per rank. Each point is the median of
# $REPS (default 3) runs of $STEPS (default 400) steps of $CONFIG (default
# jobs/bench/mlp.ini, the 784-256-128-10 MLP on Fashion-MNIST). Output in $OUT (default
# runs/scaling): scaling.csv (mode, scaling, ranks, hosts, global_batch, samples_per_s,
# efficiency, the step split into compute, communication and data wait as fractions of the
# step, and of the communication the part after the node's last rank arrived at the sum,
# nan where not measured: MPI buckets) and scaling.png (throughput and efficiency against
# ranks, with the ideal lines).
set -euo pipefail
cd "$(dirname "$0")/../.."
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(local)
RANKS=${RANKS:-1 2}
HOSTS=${HOSTS:-3}
BATCH=${BATCH:-384}
BATCH_PER_RANK=${BATCH_PER_RANK:-128}
REPS=${REPS:-3}
STEPS=${STEPS:-400}
CONFIG=${CONFIG:-jobs/bench/mlp.ini}
OUT=${OUT:-runs/scaling}
SIM_RANKS=${SIM_RANKS:-1 2 4 8 16 32 64}
SIM_STEPS=${SIM_STEPS:-20}
SIM_ROWS=${SIM_ROWS:-131072}
TIMING_ONLY=${TIMING_ONLY:-0}
PLATFORM=${PLATFORM:-jobs/scaling/platforms/10gbe.xml}
CALIBRATION=jobs/scaling/platforms/calibration.txt
source jobs/scaling/smpi.sh
export OPENBLAS_NUM_THREADS=1
[ -x build/mpinet ] || jobs/setup.sh > /dev/null
if grep -q "data/fashion-mnist.h5" "$CONFIG"; then jobs/fashion-data.sh > /dev/null; fi
mkdir -p "$OUT"
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  if [[ " ${modes[*]} " == *" hosts "* ]]; then jobs/emulate/hosts.sh down; fi
}
trap cleanup EXIT
flags=(--bind-to none --oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)

field() { grep -Eo "\"$1\": [-0-9.e+a-z]+" | head -1 | awk '{print $2}'; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# one MODE N BATCH: trains once; prints "samples_per_s compute comm data after_last"
# (fractions; after_last: the communication after the node's last rank arrived, nan where
# not measured)
one() {
  local mode=$1 n=$2 batch=$3 run=$work/run-$RANDOM
  shift 3 # the rest: more --set arguments
  local args=(train "$CONFIG" --set checkpoint.dir="$run" --set train.batch="$batch"
    --set train.max_steps="$STEPS" --set checkpoint.every_epochs=0 --set train.progress=lines "$@")
  local metrics=$run/metrics.jsonl
  case $mode in
  local) mpirun "${flags[@]}" -np "$n" build/mpinet "${args[@]}" > "$work/log" 2>&1 ;;
  simulate)
    # all ranks in one process: one core simulates them all, in turn. Timing only, the rate
    # is steady from the second step (sim.h), and the CSV takes the last epoch's: one epoch
    # and one step where that is fewer than $SIM_STEPS (each step of the CNN at 1024
    # simulated ranks costs minutes of SimGrid's time: 2 million messages a ring allreduce)
    local steps=$SIM_STEPS spe=$((SIM_ROWS / batch))
    [ "$TIMING_ONLY" != 1 ] || [ $((spe + 1)) -ge "$steps" ] || steps=$((spe + 1))
    MPINET_SIM_TIMING_ONLY=$TIMING_ONLY SIM_TIMEOUT=3600 \
      sim_run "$n" "$work/platform.xml" "$work/simhosts" "${args[@]}" \
      --set data.path="$work/sim.h5" --set data.shuffle=shard --set train.epochs=1000000 \
      --set train.max_steps="$steps" > "$work/log" 2>&1 ;;
  hosts) jobs/emulate/hosts.sh mpirun -np "$n" "$PWD/build/mpinet" "${args[@]}" > "$work/log" 2>&1 ;;
  slurm)
    local id
    # shellcheck disable=SC2086
    id=$(RUNS=$work/slurm sbatch --parsable --wait --ntasks="$n" --ntasks-per-node="$n" \
      --output="$work/log" ${SBATCH_ARGS:-} jobs/slurm/train.sbatch "$CONFIG" \
      --set train.batch="$batch" --set train.max_steps="$STEPS" --set checkpoint.every_epochs=0)
    metrics=$work/slurm/slurm-$id/metrics.jsonl
    ;;
  esac || { cat "$work/log" >&2; return 1; }
  local m; m=$(tail -1 "$metrics")
  echo "$m" | awk -v sps="$(echo "$m" | field samples_per_s)" -v t="$(echo "$m" | field train_seconds)" \
    -v d="$(echo "$m" | field time_data_s)" -v c="$(echo "$m" | field time_comm_s)" \
    -v b="$(echo "$m" | field time_comm_before_last_s)" \
    '{printf "%s %.4f %.4f %.4f %s\n", sps, (t - c - d) / t, c / t, d / t, b == "null" || b == "" ? "nan" : sprintf("%.4f", (c - b) / t)}'
}

# the simulated modes' set-up: the calibrated core speed, the platform with it, a hostfile
# that fills each 16-core node before the next, and data for the largest point
if [[ " ${modes[*]} " == *" simulate "* || " ${modes[*]} " == *" calibrate "* ]]; then
  [ -x build-sim/mpinet-sim ] || { echo "run.sh: build-sim/mpinet-sim is missing (jobs/setup.sh builds it with SimGrid)" >&2; exit 1; }
  sim_data "$work/sim.h5" "$SIM_ROWS"
  sim_hosts "$work/simhosts"
fi
if [[ " ${modes[*]} " == *" calibrate "* ]]; then
  # one rank, measured (median of $REPS) and simulated at a nominal 1 Gflop/s core; the core
  # speed that makes the simulated time the measured one is frozen in $CALIBRATION
  CORE_SPEED=1Gf
  sim_platform "$PLATFORM" "$work/platform.xml"
  cal_args=(--set data.path="$work/sim.h5" --set data.shuffle=shard --set train.epochs=1000000
    --set data.prefetch=false --set train.allreduce=mpi --set train.overlap=false)
  real=$(for r in $(seq "$REPS"); do
    STEPS=$SIM_STEPS one local 1 "$BATCH_PER_RANK" "${cal_args[@]}" | awk '{print $1}'; done | median)
  sim=$(for r in $(seq "$REPS"); do one simulate 1 "$BATCH_PER_RANK" | awk '{print $1}'; done | median)
  speed=$(echo "1000000000 * $sim / $real" | bc -l)
  printf 'CORE_SPEED=%.0ff\n# %s, %s: 1 rank of %s, %s steps of batch %s: measured %s samples/s, simulated %s at 1 Gflop/s\n' \
    "$speed" "$(date +%F)" "$(hostname -s)" "$(basename "$CONFIG" .ini)" "$SIM_STEPS" "$BATCH_PER_RANK" "$real" "$sim" \
    > "$CALIBRATION"
  cat "$CALIBRATION"
  modes=("${modes[@]/calibrate/}")
  [ -n "${modes[*]// /}" ] || exit 0 # calibrate alone: no sweep to draw
fi
if [[ " ${modes[*]} " == *" simulate "* ]]; then
  # shellcheck source=/dev/null
  source "$CALIBRATION" || { echo "run.sh: no $CALIBRATION: run jobs/scaling/run.sh calibrate" >&2; exit 1; }
  sim_platform "$PLATFORM" "$work/platform.xml"
fi

# a mode's rows in the CSV and the plot: timing-only simulations marked as such
label_of() { if [ "$1:$TIMING_ONLY" = simulate:1 ]; then echo simulate-timing; else echo "$1"; fi; }
csv=$OUT/scaling.csv
labels=()
if [ "${modes[*]}" = plot ]; then # redraw $OUT/scaling.csv (e.g. after adding a point by hand)
  [ -f "$csv" ] || { echo "run.sh: no $csv to plot" >&2; exit 1; }
  mapfile -t labels < <(awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$csv")
  modes=() # nothing to run
else
  echo "mode,scaling,ranks,hosts,global_batch,samples_per_s,efficiency,compute_fraction,comm_fraction,data_fraction,comm_after_last_fraction" > "$csv"
  for mode in "${modes[@]}"; do [ -z "$mode" ] || labels+=("$(label_of "$mode")"); done
fi
for mode in "${modes[@]}"; do
  case $mode in
  local | slurm) sizes=$RANKS ;;
  simulate) sizes=$SIM_RANKS ;;
  "") continue ;;
  hosts)
    jobs/emulate/hosts.sh up "$HOSTS" ${RATE:-} > /dev/null
    sizes=$(seq 1 "$HOSTS")
    ;;
  *) echo "run.sh: unknown mode $mode (local, hosts, slurm, simulate or calibrate)" >&2; exit 2 ;;
  esac
  for scaling in strong weak; do
    base=""
    for n in $sizes; do
      batch=$([ $scaling = strong ] && echo "$BATCH" || echo $((BATCH_PER_RANK * n)))
      if [ $((batch % n)) -ne 0 ]; then echo "run.sh: skipping $n ranks: batch $batch" >&2; continue; fi
      for r in $(seq "$REPS"); do one "$mode" "$n" "$batch"; done > "$work/reps"
      sps=$(awk '{print $1}' "$work/reps" | median)
      # the split of the median run
      read -r _ comp comm data after < <(awk -v m="$sps" '$1 == m' "$work/reps" | head -1; echo)
      [ -n "$base" ] || base=$(echo "$sps / $n" | bc -l)
      eff=$(echo "$sps / ($n * $base)" | bc -l)
      case $mode in
      hosts) hosts=$n ;;
      simulate) hosts=$(((n + 15) / 16)) ;; # the platforms' 16-core nodes, filled in turn
      *) hosts=1 ;;
      esac
      printf "%s,%s,%d,%d,%d,%.1f,%.3f,%s,%s,%s,%s\n" "$(label_of "$mode")" "$scaling" "$n" "$hosts" "$batch" "$sps" \
        "$eff" "${comp:-nan}" "${comm:-nan}" "${data:-nan}" "${after:-nan}" | tee -a "$csv"
    done
  done
  [ "$mode" != hosts ] || jobs/emulate/hosts.sh down
done

where="$(hostname -s): $(nproc) cores, more ranks than that are oversubscribed ($STEPS steps)"
if [[ " ${labels[*]} " == *" simulate"* ]]; then
  sim="simulated on $(basename "$PLATFORM" .xml), 16-core nodes ($SIM_STEPS steps$([ "$TIMING_ONLY" != 1 ] || echo ", timing only"))"
  # this machine's part of the title only where some rows ran on it
  if printf '%s\n' "${labels[@]}" | grep -qv '^simulate'; then where="$sim; $where"; else where=$sim; fi
fi
if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1200,900 font ",11"
set output "$OUT/scaling.png"
set multiplot layout 2,2 title "mpinet scaling: $(basename "$CONFIG" .ini), median of $REPS runs; $where"
set key top left
set grid
set xlabel "ranks"
$(if [ "$(awk -F, 'NR > 1 && $3 > m { m = $3 } END { print m + 0 }' "$csv")" -gt 8 ]; then
    echo 'set logscale x 2'; echo 'set xtics 2' # 1, 2, 4, ... (a multiplicative step)
  else echo 'set xtics 1'; fi)
modes = "${labels[*]}"
do for [s in "strong weak"] {
  set ylabel "samples/s"
  set title s eq "strong" ? "strong scaling (global batch $BATCH): throughput" : "weak scaling ($BATCH_PER_RANK per rank): throughput"
  plot for [m in modes] "< awk -F, '\$1==\"".m."\" && \$2==\"".s."\"' $csv" using 3:6 with linespoints lw 2 title m, \
       for [m in modes] "< awk -F, '\$1==\"".m."\" && \$2==\"".s."\" && \$3==1' $csv" using (1):6:(\$6) with points notitle, \
       for [m in modes] "< awk -F, 'BEGIN{b=0} \$1==\"".m."\" && \$2==\"".s."\" {if (!b) b=\$6/\$3; print \$3\",\"b*\$3}' $csv" using 1:2 with lines dt 2 lc rgb "gray" title "ideal (".m.")"
  set ylabel "efficiency"
  set yrange [0:1.2]
  set title s eq "strong" ? "strong scaling: efficiency" : "weak scaling: efficiency"
  plot for [m in modes] "< awk -F, '\$1==\"".m."\" && \$2==\"".s."\"' $csv" using 3:7 with linespoints lw 2 title m, \
       1 with lines dt 2 lc rgb "gray" title "ideal"
  unset yrange
}
unset multiplot
GP
  echo "run.sh: wrote $csv and $OUT/scaling.png"
else
  echo "run.sh: wrote $csv (gnuplot not installed: no plot)"
fi
