#!/usr/bin/env bash
# minicluster.sh: a throwaway single-node SLURM cluster (munged, slurmctld, slurmd) whose
# config, state, sockets and logs all live under one directory, for tests and for trying the
# job scripts on a machine without a cluster. Needs root and Debian's slurm-wlm and munge.
#
#   jobs/slurm/minicluster.sh start DIR   starts the daemons; prints `export SLURM_CONF=...`
#   jobs/slurm/minicluster.sh stop DIR    cancels every job and stops what `start` started
#
# The daemons listen on ports 16817/16818 (not SLURM's defaults, so a real installation on
# the same host is left alone); munged's socket is DIR/munge.socket. Settings that work on
# Debian 12 without systemd or cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=
# task/none, SelectType=select/cons_tres; Open MPI 4.1 direct-launches with srun --mpi=pmix.
set -euo pipefail
cmd=${1:?usage: minicluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: minicluster.sh start|stop DIR}")
conf=$dir/slurm.conf

stop() {
  if [ -f "$conf" ]; then
    SLURM_CONF=$conf timeout 10 scancel --full --quiet "--user=$(id -un)" 2>/dev/null || true
  fi
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

start() {
  [ "$(id -u)" = 0 ] || { echo "minicluster.sh: needs root" >&2; exit 1; }
  command -v slurmctld > /dev/null && command -v munged > /dev/null \
    || { echo "minicluster.sh: needs slurm-wlm and munge (apt-get install slurm-wlm munge)" >&2; exit 1; }
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  chmod 755 "$dir"
  # MUNGE: a fresh key, the daemon on a private socket
  [ -f "$dir/munge.key" ] || { dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none; }
  chmod 400 "$dir/munge.key"
  munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munged.seed"
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$conf" <<CONF
# written by jobs/slurm/minicluster.sh
ClusterName=mpinet-mini
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket,cred_expire=15
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF=$conf
  slurmctld -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.2
  done
  echo "minicluster.sh: the node did not come up in 20 s; logs in $dir/log" >&2
  tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  stop
  exit 1
}

case $cmd in
start) start ;;
stop) stop ;;
*) echo "usage: minicluster.sh start|stop DIR" >&2; exit 2 ;;
esac
