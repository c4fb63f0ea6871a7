#!/usr/bin/env bash
# The simulated build (issue 27): mpinet-sim, the same sources compiled by SimGrid's smpicc,
# runs the real training loop at N simulated ranks under smpirun.
#   simulate.sh N: a tiny job at N simulated ranks completes, its loss falls, its parameters
#   match the same job under a real mpirun at N ranks (with the settings the simulated build
#   forces: blocking MPI allreduce, no overlap, no prefetch; bit-identical at 2 and 4 ranks,
#   rtol 1e-5 beyond, where the simulated collectives may add in another order), and the
#   simulated time grows when the platform's bandwidth is cut 10x (the model's 43 KB of
#   gradients per step: 35 us at 10 Gbit/s, 350 us at 1).
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
sha() { grep -o 'parameters sha256 [0-9a-f]*' "$1" | cut -d' ' -f3; }
if [ "$N" -le 4 ]; then
  [ "$(sha "$WORK/sim.txt")" = "$(sha "$WORK/real.txt")" ] \
    || fail "simulated and real runs at $N ranks differ"
  echo "ok: simulated = real at $N ranks, bit for bit ($(sha "$WORK/sim.txt"))"
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
