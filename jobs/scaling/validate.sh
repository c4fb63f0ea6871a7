#!/usr/bin/env bash
# validate.sh: the simulator against measured runs (issue 27): the same job measured and
# simulated, samples/s side by side, the error of the simulation.
#
#   jobs/scaling/validate.sh [CASE...]     (default: local2 hosts-1gbit hosts-100mbit)
#
#   local2         2 ranks on this machine; simulated: one 2-core node whose ranks talk
#                  through the loopback of the platform files (10 GB/s, 0.5 us, assumed)
#   hosts-RATE     2 emulated hosts (jobs/emulate/hosts.sh, root), one rank each, links shaped
#                  to RATE by tc tbf (hostsN-RATE: N hosts, their ranks yielding the CPU when
#                  idle, mpi_yield_when_idle, as N > 2 ranks share this machine's 2 cores);
#                  simulated: N one-core nodes whose links have the
#                  bandwidth and latency MPI sees on the emulated link (jobs/scaling/
#                  linkprobe.c: 4 MB messages one way, 1-byte ping-pong), measured on the
#                  link, never fitted to mpinet
#
# The job: $CONFIG (default the MLP 784-256-128-10; jobs/bench/cnn.ini the CNN) on synthetic
# Fashion-shaped data, shard mode, global
# batch $BATCH (default 256), $STEPS (default 200) steps, with what the simulated build
# forces on both sides (one blocking MPI allreduce per step, no overlap, no prefetch).
# Cores run at the calibrated speed (jobs/scaling/platforms/calibration.txt; nothing here is
# fitted per case). Medians of $REPS (default 3) runs each. Prints one JSON line per case,
# with the Open MPI TCP eager limit it ran under: the README's cases over emulated links set
# OMPI_MCA_btl_tcp_eager_limit and OMPI_MCA_btl_tcp_max_send_size to a size above the
# gradients (a rendezvous above the limit costs what SimGrid does not model: platforms README).
set -euo pipefail
cd "$(dirname "$0")/../.."
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(local2 hosts-1gbit hosts-100mbit)
CONFIG=${CONFIG:-jobs/bench/mlp.ini}
BATCH=${BATCH:-256}
STEPS=${STEPS:-200}
REPS=${REPS:-3}
export OPENBLAS_NUM_THREADS=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x build-sim/mpinet-sim ] || { echo "validate.sh: build-sim/mpinet-sim is missing (jobs/setup.sh)" >&2; exit 1; }
# shellcheck source=/dev/null
source jobs/scaling/platforms/calibration.txt
source jobs/scaling/smpi.sh
work=$(mktemp -d)
trap 'rm -rf "$work"; [[ " ${cases[*]} " != *" hosts"* ]] || jobs/emulate/hosts.sh down' EXIT
mpicc -O2 jobs/scaling/linkprobe.c -o "$work/linkprobe"
sim_data "$work/d.h5" 65536
args=(train "$CONFIG" --set data.path="$work/d.h5" --set data.shuffle=shard --set data.prefetch=false
  --set train.allreduce=mpi --set train.overlap=false --set train.bucket_mb=4096
  --set train.batch="$BATCH" --set train.max_steps="$STEPS" --set train.epochs=1000000
  --set checkpoint.every_epochs=0 --set train.progress=lines)
field() { grep -Eo "\"$1\": [-0-9.e+]+" | tail -1 | awk '{print $2}'; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# platform NODES CORES BW LAT: the simulated counterpart
platform() {
  cat > "$work/p.xml" <<XML
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <cluster id="c" prefix="node-" suffix="" radical="0-$(($1 - 1))" core="$2" speed="$CORE_SPEED"
           bw="$3" lat="$4" sharing_policy="SPLITDUPLEX" loopback_bw="10GBps" loopback_lat="0.5us"/>
</platform>
XML
  for i in $(seq 0 $(($1 - 1))); do echo "node-$i:$2"; done > "$work/h"
}
measure() { # measure CASE: samples/s of one real run
  rm -rf "$work/run"
  case $1 in
  local2) mpirun --bind-to core -np 2 build/mpinet "${args[@]}" --set checkpoint.dir="$work/run" ;;
  hosts*) jobs/emulate/hosts.sh mpirun -np "$nh" "$PWD/build/mpinet" "${args[@]}" --set checkpoint.dir="$work/run" ;;
  esac > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  field samples_per_s < "$work/run/metrics.jsonl"
}
simulate() { # samples/s of one simulated run on $work/p.xml
  rm -rf "$work/run"
  sim_run "$nh" "$work/p.xml" "$work/h" "${args[@]}" --set checkpoint.dir="$work/run" \
    > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  field samples_per_s < "$work/run/metrics.jsonl"
}
for c in "${cases[@]}"; do
  case $c in
  local2) nh=2; platform 1 2 1Gbps 1us; note="loopback 10GBps/0.5us" ;;
  hosts*-*)
    rate=${c#hosts*-} nh=${c%%-*}
    nh=${nh#hosts}
    nh=${nh:-2}
    [ "$nh" -le 2 ] || export OMPI_MCA_mpi_yield_when_idle=1
    jobs/emulate/hosts.sh up "$nh" "$rate" > /dev/null
    # the emulated link as MPI sees it: one-way latency (us) and bandwidth (MB/s)
    read -r lat mbps both < <(jobs/emulate/hosts.sh mpirun -np 2 "$work/linkprobe")
    bw="${mbps}MBps"
    platform "$nh" 1 "$bw" "${lat}us"
    note="$bw, ${lat}us (linkprobe on the emulated link; both ways at once ${both}MBps)"
    ;;
  *) echo "validate.sh: unknown case $c" >&2; exit 2 ;;
  esac
  for r in $(seq "$REPS"); do measure "$c"; done > "$work/m"
  for r in $(seq "$REPS"); do simulate; done > "$work/s"
  [[ $c != hosts* ]] || jobs/emulate/hosts.sh down
  unset OMPI_MCA_mpi_yield_when_idle
  m=$(median < "$work/m") s=$(median < "$work/s")
  printf '{"validate": "%s", "model": "%s", "global_batch": %s, "steps": %s, "btl_tcp_eager_limit": "%s", "measured_samples_per_s": %s, "simulated_samples_per_s": %s, "error": %.3f, "simulated_link": "%s", "measured_runs": [%s], "simulated_runs": [%s]}\n' \
    "$c" "$(basename "$CONFIG" .ini)" "$BATCH" "$STEPS" "${OMPI_MCA_btl_tcp_eager_limit:-default}" "$m" "$s" "$(echo "($s - $m) / $m" | bc -l)" "$note" \
    "$(paste -sd, "$work/m")" "$(paste -sd, "$work/s")"
done
