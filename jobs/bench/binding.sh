# binding.sh: mpirun's placement flags for N ranks on this machine (sourced by the benchmarks).
# Two ranks or more, up to one per core: one core each (mpirun's own default at np <= 2).
# Unbound, Linux sometimes runs both ranks of a 2-rank job on one vCPU for a while (seen
# with ps -o psr), and --oversubscribe makes Open MPI yield while it waits, which invites it:
# either halves a run. One rank stays unbound, so that the prefetch thread has the idle core
# (data.prefetch = auto); more ranks than cores need --oversubscribe.
mpirun_placement() {
  local n=$1 cores; cores=$(nproc)
  if [ "$n" -gt "$cores" ]; then echo --bind-to none --oversubscribe
  elif [ "$n" -gt 1 ]; then echo --bind-to core
  else echo --bind-to none; fi
}
