#!/usr/bin/env bash
# The simulated build (issue 27): mpinet-sim, the same sources compiled by SimGrid's smpicc,
# runs the real training loop at N simulated ranks under smpirun.
#   simulate.sh N: a tiny job at N simulated ranks completes, its loss falls, its parameters
#   match the same job under a real mpirun at N ranks (with the settings the simulated build
#   forces: blocking MPI allreduce, no overlap, no prefetch; bit-identical at 2 and 4 ranks,
#   rtol 1e-5 beyond, where the simulated collectives may add in another order), and the
#   simulated time grows when the platform's bandwidth is cut 10x (the model's 43 KB of
#   gradients per step: 35 us at 10 Gbit/s, 350 us at 1).
#   The timing-only mode (mpi/sim.h) of a model with 3.4 MB of parameters: the same simulated
#   time as the training run within 25% (communication is most of its step, the same bytes in
#   both; only the computation, measured by rank 0 and charged to the others, may differ),
#   and less memory by at least one parameter-sized buffer for each rank but rank 0;
#   reproducible mode refused in one line.
# Skipped (77) with the reason where SimGrid or the simulated build is missing.
source "$(dirname "$0")/lib.sh"
N=${1:?world size}
SIM=${MPINET_SIM:-$(cd "$(dirname "$MPINET")/.." && pwd)/build-sim/mpinet-sim}
command -v smpirun > /dev/null || { echo "SKIP: no smpirun (apt-get install libsimgrid-dev)"; exit 77; }
[ -x "$SIM" ] || { echo "SKIP: $SIM is not built (jobs/setup.sh builds it with SimGrid)"; exit 77; }

# platform BW: N single-core hosts of 1 Gflop/s on a cluster's links of BW, 50 us
platform() {
  cat > "$WORK/p-$1.xml" <<XML
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <cluster id="c" prefix="node-" suffix="" radical="0-$((N - 1))" core="1" speed="1Gf"
           bw="$1" lat="50us" loopback_bw="10GBps" loopback_lat="1us"/>
</platform>
XML
}
platform 1.25GBps
platform 125MBps
for i in $(seq 0 $((N - 1))); do echo "node-$i"; done > "$WORK/hosts"
make_blobs "$WORK/d.h5" --train 2400 --test 200 --features 16 --classes 4
cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/d.h5
prefetch = false
[train]
epochs = 2
batch = 48
lr = 0.05
momentum = 0.9
seed = 7
progress = lines
allreduce = mpi
overlap = false
bucket_mb = 4096
[layer]
type = dense
units = 512
activation = tanh
[layer]
type = dense
units = 4
INI
# sim BW DIR [ARGS...]: the job at N simulated ranks on platform BW
sim() {
  local bw=$1 dir=$2; shift 2
  timeout -k 5 300 smpirun -np "$N" -platform "$WORK/p-$bw.xml" -hostfile "$WORK/hosts" \
    --cfg=smpi/coll-selector:ompi --cfg=smpi/host-speed:1Gf --log=root.thresh:warning "$@" \
    "$SIM" train "$WORK/job.ini" --set checkpoint.dir="$dir" --set train.watchdog_seconds=0
}
sim 1.25GBps "$WORK/sim" > "$WORK/sim.txt" 2>&1 || { cat "$WORK/sim.txt"; fail "the simulated run failed"; }
cat "$WORK/sim.txt"
grep -q '^simulated (mpinet-sim' "$WORK/sim.txt" || fail "no word that the run is simulated"
loss() { grep -o '"train_loss": [0-9.e+-]*' "$1/metrics.jsonl" | cut -d' ' -f2; }
first=$(loss "$WORK/sim" | head -1) last=$(loss "$WORK/sim" | tail -1)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "the loss did not fall ($first -> $last)"

run_mpi "$N" train "$WORK/job.ini" --set checkpoint.dir="$WORK/real" > "$WORK/real.txt"
if [ "$N" -le 4 ]; then
  [ "$(sha_of "$WORK/sim.txt")" = "$(sha_of "$WORK/real.txt")" ] \
    || fail "simulated and real runs at $N ranks differ"
  echo "ok: simulated = real at $N ranks, bit for bit ($(sha_of "$WORK/sim.txt"))"
else
  "$TEST_TOOLS/compare_params" "$WORK/sim/ckpt-00000100.h5" "$WORK/real/ckpt-00000100.h5" \
    --rtol 1e-5 || fail "simulated and real runs at $N ranks differ"
fi

# communication only (computation not simulated, so the times are exact): a 10x slower
# network takes longer (not 10x: the 50 us latency of each of the allreduce's rounds stays)
for bw in 1.25GBps 125MBps; do
  sim "$bw" "$WORK/t-$bw" --cfg=smpi/simulate-computation:no > "$WORK/t-$bw.txt" 2>&1 \
    || { cat "$WORK/t-$bw.txt"; fail "the run on $bw failed"; }
done
t() { grep -o '"train_seconds": [0-9.e+-]*' "$WORK/t-$1/metrics.jsonl" | tail -1 | cut -d' ' -f2; }
echo "simulated training time: $(t 1.25GBps) s at 10 Gbit/s, $(t 125MBps) s at 1 Gbit/s"
awk -v a="$(t 1.25GBps)" -v b="$(t 125MBps)" 'BEGIN { exit !(b > 1.2 * a) }' \
  || fail "cutting the bandwidth 10x did not slow the simulated run"

# timing only: a wide layer, 16 -> 40000 -> 4, 840,004 parameters (3.4 MB a buffer)
sed 's/units = 512/units = 40000/' "$WORK/job.ini" > "$WORK/wide.ini"
# wide MODE DIR [ARGS...]: the wide job, 20 steps at N simulated ranks on 10 Gbit/s links,
# MPINET_SIM_TIMING_ONLY=MODE (shared buffers need SimGrid's "local" shared malloc: smpi.sh)
wide() {
  local mode=$1 dir=$2; shift 2
  MPINET_SIM_TIMING_ONLY=$mode timeout -k 5 300 smpirun -np "$N" -platform "$WORK/p-1.25GBps.xml" \
    -hostfile "$WORK/hosts" --cfg=smpi/coll-selector:ompi --cfg=smpi/host-speed:1Gf \
    --cfg=smpi/shared-malloc:local --log=root.thresh:warning "$SIM" train "$WORK/wide.ini" \
    --set checkpoint.dir="$dir" --set train.watchdog_seconds=0 --set train.max_steps=20 "$@"
}
for mode in 0 1; do
  wide $mode "$WORK/w$mode" > "$WORK/w$mode.txt" 2>&1 \
    || { cat "$WORK/w$mode.txt"; fail "the wide job failed (timing only: $mode)"; }
done
grep -q '^timing only (MPINET_SIM_TIMING_ONLY)' "$WORK/w1.txt" || fail "no word that the run only times"
grep -q '^timing only' "$WORK/w0.txt" && fail "a training run says it only times"
ts() { grep -o '"train_seconds": [0-9.e+-]*' "$WORK/$1/metrics.jsonl" | tail -1 | cut -d' ' -f2; }
# the simulation's memory: metrics.jsonl's pss_mb sums every rank's proportional set size,
# here N times the one process's (RSS would count shared pages once per rank that maps them)
pss() { grep -o '"pss_mb": [0-9.]*' "$WORK/$1/metrics.jsonl" | tail -1 | awk -v n="$N" '{print $2 / n}'; }
echo "wide job, simulated: training $(ts w0) s, timing only $(ts w1) s; the simulation's" \
  "memory $(pss w0) MiB and $(pss w1) MiB"
awk -v a="$(ts w0)" -v b="$(ts w1)" 'BEGIN { exit !(b < 1.25 * a && a < 1.25 * b) }' \
  || fail "timing only and training simulate different times"
# each of the other ranks holds 3 buffers of 3.4 MB (parameters, gradients, momentum) in a
# training run, none in timing only: at least one of them must show (not all three: rank 0's
# copies are not all the simulation's extra pages, e.g. 16 MB of 30 at 4 ranks, 197 at 16)
awk -v a="$(pss w0)" -v b="$(pss w1)" -v n="$N" 'BEGIN { exit !(b + (n - 1) * 3.36 < a) }' \
  || fail "timing only does not save the parameter buffers' memory"
wide 1 "$WORK/w2" --set train.reproducible=true > "$WORK/w2.txt" 2>&1 \
  && fail "timing only ran reproducible mode"
grep -q 'reproducible: the timing-only simulation' "$WORK/w2.txt" || { cat "$WORK/w2.txt"; fail "no clear refusal"; }
echo "ok: timing only"
