# common.sh: what mpinet's SLURM job scripts share (sourced by train.sbatch and
# train-multinode.sbatch; not a job script itself).
#
#   mpinet_slurm_train LAUNCHER CONFIG.ini [--set section.key=value ...]
#
# LAUNCHER is srun (direct launch: srun --mpi=pmix, Open MPI 4.1 talks PMIx to slurmd) or
# mpirun (Open MPI's launcher inside the allocation; it reads the node list from SLURM).
# The run directory is $RUNS/slurm-$SLURM_JOB_ID ($RUNS defaults to runs/ in the submit
# directory): a requeued job keeps its job id, finds its own checkpoints and resumes.
# SIGUSR1 or SIGTERM to the batch shell (#SBATCH --signal=B:USR1@60 before the time limit,
# `scancel -s USR1 -b JOBID`, preemption) is forwarded to the ranks: every rank stops after
# the same step, rank 0 checkpoints, mpinet exits 75 and the job requeues itself.
# Environment: MPINET (the binary; default build/mpinet of the submit directory), RUNS.
# OPENBLAS_NUM_THREADS is set to SLURM_CPUS_PER_TASK (else kept, else 1).

mpinet_slurm_train() {
  local launcher=$1 config=$2
  shift 2
  cd "${SLURM_SUBMIT_DIR:-.}"
  local mpinet=${MPINET:-$PWD/build/mpinet}
  local run_dir=${RUNS:-runs}/slurm-${SLURM_JOB_ID:?not inside a SLURM job}
  # BLAS threads per rank = the cores SLURM gave each task (an OPENBLAS_NUM_THREADS exported
  # from the submitting shell would otherwise silently override --cpus-per-task)
  export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OPENBLAS_NUM_THREADS:-1}}
  local args
  if [ -f "$run_dir/finished" ]; then
    echo "mpinet-slurm: $run_dir is finished ($(paste -sd " " "$run_dir/finished")); nothing to do"
    return 0
  elif [ -f "$run_dir/latest" ]; then
    echo "mpinet-slurm: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}): resuming $run_dir from $(cat "$run_dir/latest")"
    args=(train --resume "$run_dir")
  else
    echo "mpinet-slurm: job $SLURM_JOB_ID: $SLURM_NTASKS ranks on $SLURM_JOB_NUM_NODES node(s) ($SLURM_JOB_NODELIST), run dir $run_dir"
    args=(train "$config" --set checkpoint.dir="$run_dir" "$@")
  fi
  local launch
  case $launcher in
  srun) launch=(srun --mpi=pmix --kill-on-bad-exit=1 "$mpinet") ;;
  mpirun)
    launch=(mpirun --bind-to core -x OPENBLAS_NUM_THREADS)
    [ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)
    launch+=("$mpinet")
    ;;
  *) echo "mpinet-slurm: unknown launcher '$launcher' (srun or mpirun)" >&2; return 2 ;;
  esac
  "${launch[@]}" "${args[@]}" &
  local child=$! rc=0
  # bash runs a trap only between commands: `wait` returns early (> 128) when one fires
  trap 'echo "mpinet-slurm: signal received: asking the ranks to checkpoint and stop"; kill -USR1 $child 2>/dev/null' USR1 TERM
  while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  trap - USR1 TERM
  if [ "$rc" -eq 75 ]; then
    echo "mpinet-slurm: checkpointed in $run_dir; requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
    return 0
  fi
  if [ "$rc" -eq 0 ] && [ ! -f "$run_dir/finished" ]; then
    # seen with srun: a step that fails to launch can leave srun exiting 0
    echo "mpinet-slurm: the launcher exited 0 but $run_dir/finished is missing: the run did not finish" >&2
    return 1
  fi
  echo "mpinet-slurm: mpinet exited $rc"
  return "$rc"
}
