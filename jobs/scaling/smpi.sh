# smpi.sh: how the scaling scripts simulate (sourced by run.sh, validate.sh, slow_links.sh,
# from the repository root), so that every simulated figure comes from the same command.
#
#   sim_platform PLATFORM OUT.xml   a platform file with $CORE_SPEED (the calibrated speed,
#                                   jobs/scaling/platforms/calibration.txt) in place
#   sim_hosts OUT                   a hostfile of the platforms' 64 nodes of 16 cores, each
#                                   filled before the next
#   sim_data OUT.h5 ROWS            synthetic Fashion-MNIST-shaped rows (uint8 (1, 28, 28), 10
#                                   classes, random pixels: every config fits them, and speed
#                                   does not depend on what there is to learn), 1024 test rows
#   sim_run N PLATFORM.xml HOSTFILE ARGS...
#                                   build-sim/mpinet-sim ARGS at N simulated ranks: Open MPI's
#                                   collective choices (coll-selector ompi), cores at
#                                   $CORE_SPEED, SMPI's bandwidth and latency factors off (a
#                                   platform's figures are already what MPI sees; `:1` alone
#                                   crashes SimGrid 3.32); shared buffers (timing-only mode,
#                                   mpi/sim.h) one mapping each, not SimGrid's default of one
#                                   per MB; at most $SIM_TIMEOUT s (7200)

sim_platform() { sed "s/CORE_SPEED/$CORE_SPEED/" "$1" > "$2"; }

sim_hosts() { for i in $(seq 0 63); do echo "node-$i:16"; done > "$1"; }

sim_data() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
import h5py, numpy as np
rng = np.random.default_rng(1)
with h5py.File(sys.argv[1], "w") as f:
    for split, rows in (("train", int(sys.argv[2])), ("test", 1024)):
        f[f"{split}/x"] = rng.integers(0, 256, size=(rows, 1, 28, 28), dtype=np.uint8)
        f[f"{split}/y"] = rng.integers(0, 10, size=rows).astype(np.int32)
    f.attrs["classes"] = 10
PY
}

sim_run() {
  local n=$1 platform=$2 hosts=$3
  shift 3
  timeout "${SIM_TIMEOUT:-7200}" smpirun -np "$n" -platform "$platform" -hostfile "$hosts" \
    --cfg=smpi/coll-selector:ompi --cfg=smpi/host-speed:"$CORE_SPEED" \
    --cfg=smpi/bw-factor:0:1 --cfg=smpi/lat-factor:0:1 --cfg=smpi/shared-malloc:local \
    --log=root.thresh:warning \
    build-sim/mpinet-sim "$@"
}
