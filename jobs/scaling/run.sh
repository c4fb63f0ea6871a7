#!/usr/bin/env bash
# run.sh: strong- and weak-scaling sweeps of mpinet, written as CSV and drawn with gnuplot.
#
#   jobs/scaling/run.sh [local] [hosts] [slurm]      (default: local)
#
#   local   world sizes $RANKS (default "1 2") on this machine, mpirun
#   hosts   1..$HOSTS (default 3) emulated hosts, one rank each (jobs/emulate/hosts.sh; root;
#           $RATE, e.g. 1gbit, shapes the links)
#   slurm   one sbatch job per world size in $RANKS through jobs/slurm/train.sbatch
#           (--ntasks=N; add SBATCH_ARGS="--nodes=4 --ntasks-per-node=8 ..." on a real
#           cluster; SLURM_CONF must point at the cluster, e.g. jobs/slurm/minicluster.sh's)
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
  local args=(train "$CONFIG" --set checkpoint.dir="$run" --set train.batch="$batch"
    --set train.max_steps="$STEPS" --set checkpoint.every_epochs=0 --set train.progress=lines)
  local metrics=$run/metrics.jsonl
  case $mode in
  local) mpirun "${flags[@]}" -np "$n" build/mpinet "${args[@]}" > "$work/log" 2>&1 ;;
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

csv=$OUT/scaling.csv
echo "mode,scaling,ranks,hosts,global_batch,samples_per_s,efficiency,compute_fraction,comm_fraction,data_fraction,comm_after_last_fraction" > "$csv"
for mode in "${modes[@]}"; do
  case $mode in
  local | slurm) sizes=$RANKS ;;
  hosts)
    jobs/emulate/hosts.sh up "$HOSTS" ${RATE:-} > /dev/null
    sizes=$(seq 1 "$HOSTS")
    ;;
  *) echo "run.sh: unknown mode $mode (local, hosts or slurm)" >&2; exit 2 ;;
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
      hosts=$([ "$mode" = hosts ] && echo "$n" || echo 1)
      printf "%s,%s,%d,%d,%d,%.1f,%.3f,%s,%s,%s,%s\n" "$mode" "$scaling" "$n" "$hosts" "$batch" "$sps" \
        "$eff" "${comp:-nan}" "${comm:-nan}" "${data:-nan}" "${after:-nan}" | tee -a "$csv"
    done
  done
  [ "$mode" != hosts ] || jobs/emulate/hosts.sh down
done

if command -v gnuplot > /dev/null; then
  gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1200,900 font ",11"
set output "$OUT/scaling.png"
set multiplot layout 2,2 title "mpinet scaling: $(basename "$CONFIG" .ini), $STEPS steps, median of $REPS runs; $(hostname -s): $(nproc) cores, more ranks than that are oversubscribed"
set key top left
set grid
set xlabel "ranks"
set xtics 1
modes = "${modes[*]}"
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
