#!/usr/bin/env bash
# The shipped SLURM job scripts on a real SLURM: a throwaway single-node cluster
# (jobs/slurm/minicluster.sh: munged, slurmctld, slurmd from Debian's packages, everything
# under a temp dir, always stopped at the end) runs
#   1. jobs/slurm/train.sbatch (srun --mpi=pmix, 2 tasks): completes, and its parameters are
#      bit-identical to the same job under a plain mpirun;
#   2. jobs/slurm/train-multinode.sbatch on one node (mpirun inside the allocation);
#   3. preemption: `scancel -s USR1 -b` to the batch shell -> every rank stops after the
#      same step and checkpoints -> the script requeues the job -> the requeued job resumes
#      from its own run directory and ends bit-identical to an uninterrupted run.
# Skipped (exit 77) only when not root: the daemons need it.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: starting slurmctld, slurmd and munged needs root"; exit 77; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
cluster=$WORK/cluster
trap '"$REPO/jobs/slurm/minicluster.sh" stop "$cluster"; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
eval "$("$REPO/jobs/slurm/minicluster.sh" start "$cluster")"
sinfo
export RUNS=$WORK/runs MPINET
cd "$REPO" # the scripts run from the submit directory

state() { scontrol show job "$1" | grep -Eo 'JobState=[A-Z_]+' | cut -d= -f2; }
# wait_state ID STATE SECONDS
wait_state() {
  for _ in $(seq $(($3 * 10))); do [ "$(state "$1")" = "$2" ] && return 0; sleep 0.1; done
  cat "$WORK/$1.out" >&2 || true
  fail "job $1 is $(state "$1"), not $2, after $3 s"
}
check_done() { # check_done ID EPOCH [SECONDS]: COMPLETED with exit 0:0, and the run finished
  wait_state "$1" COMPLETED "${3:-60}"
  scontrol show job "$1" | grep -q "ExitCode=0:0" || fail "job $1 exit code: $(scontrol show job "$1" | grep -Eo 'ExitCode=[0-9:]+')"
  grep -q "replicas identical on all 2 ranks" "$WORK/$1.out" || fail "job $1 did not finish training"
  [ -f "$RUNS/slurm-$1/finished" ] || fail "job $1: no finished marker"
  [ "$(tail -1 "$RUNS/slurm-$1/metrics.jsonl" | grep -Eo '"epoch": [0-9]+')" = '"epoch": '"$2" ] \
    || fail "job $1: metrics.jsonl does not end at epoch $2"
}

# 1. srun, and the same job under mpirun for comparison
make_blobs "$WORK/d.h5" --train 4800 --test 200 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/unused"
sed -i 's/^units = 32$/units = 512/; s/^units = 24$/units = 256/' "$WORK/job.ini"
id=$(sbatch --parsable --wait --output="$WORK/%j.out" jobs/slurm/train.sbatch "$WORK/job.ini") \
  || fail "sbatch --wait failed: $(cat "$WORK"/*.out)"
check_done "$id" 2
grep -q "2 ranks on 1 node" "$WORK/$id.out" || fail "not 2 ranks"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/plain" > /dev/null
"$TEST_TOOLS/compare_params" "$WORK/plain/ckpt-00000200.h5" "$RUNS/slurm-$id/ckpt-00000200.h5" --exact

# 2. mpirun inside the allocation
id=$(MPINET_LAUNCHER=mpirun sbatch --parsable --wait --nodes=1 --ntasks-per-node=2 \
  --output="$WORK/%j.out" jobs/slurm/train-multinode.sbatch "$WORK/job.ini") \
  || fail "sbatch --wait failed: $(cat "$WORK"/*.out)"
check_done "$id" 2

# 3. preemption -> checkpoint -> requeue -> resume
sed -i 's/^epochs = 2$/epochs = 8/' "$WORK/job.ini"
id=$(sbatch --parsable --output="$WORK/%j.out" jobs/slurm/train.sbatch "$WORK/job.ini")
for _ in $(seq 600); do [ -s "$RUNS/slurm-$id/metrics.jsonl" ] && break; sleep 0.1; done
[ -s "$RUNS/slurm-$id/metrics.jsonl" ] || fail "job $id did not reach its first epoch end"
scancel -s USR1 -b "$id"
wait_state "$id" PENDING 30
# and the first run's step daemon gone (its PMIx socket would clash with the next run's)
for _ in $(seq 100); do pgrep -f "slurmstepd: \[$id\." > /dev/null || break; sleep 0.1; done
scontrol show job "$id" | grep -q "Restarts=1" || fail "job $id was not requeued: $(cat "$WORK/$id.out")"
# SLURM holds a requeued batch job until the credentials of its first run expire
# (AuthInfo cred_expire: 120 s by default, 15 s in the minicluster). Moving its start time
# to now instead raced slurmd, which then killed the new run for a revoked credential
# ("Killing non-startable batch JobId=3: Job credential revoked"): 2 of 6 runs here.
check_done "$id" 8 120
cat "$WORK/$id.out" | grep -E "mpinet-slurm|stopped|resuming"
grep -q "stopped by a signal after step" "$WORK/$id.out" || fail "no stop after the signal"
grep -q "requeueing job $id" "$WORK/$id.out" || fail "the script did not requeue"
grep -q "resuming from .*ckpt-" "$WORK/$id.out" || fail "the requeued job did not resume"
run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/straight" > /dev/null
"$TEST_TOOLS/compare_params" "$WORK/straight/ckpt-00000800.h5" "$RUNS/slurm-$id/ckpt-00000800.h5" --exact
echo "slurm: srun, mpirun and preemption/requeue/resume all passed"
