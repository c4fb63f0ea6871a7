#!/usr/bin/env bash
# hosts.sh: emulated cluster nodes on one machine, as Linux network namespaces joined by a
# bridge, so that mpirun really crosses a network (TCP over veth) between "hosts".
#
#   jobs/emulate/hosts.sh up N [RATE]   creates hosts mnh0..mnh<N-1> (10.77.0.1..N/24); RATE
#                                       (e.g. 1gbit) shapes each host's link with tc tbf
#   jobs/emulate/hosts.sh down          removes every namespace it created
#   jobs/emulate/hosts.sh mpirun ARGS   mpirun from mnh0 across the hosts (see below)
#
# The bridge lives in its own namespace (mnsw) and the addresses only inside the host
# namespaces: the machine's own network is not touched. `mpirun` here runs from mnh0 with
# the hostfile $HOSTFILE (default: every host, SLOTS slots each, default 1), Open MPI's ssh
# replaced by jobs/emulate/netns-ssh (which execs `ip netns exec HOST`), TCP between hosts
# and shared memory only within one. Needs root and iproute2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=mnh
sw=mnsw

up() {
  local n=${1:?hosts.sh up N [RATE]} rate=${2:-}
  [ "$(id -u)" = 0 ] || { echo "hosts.sh: needs root" >&2; exit 1; }
  down
  ip netns add $sw
  ip -n $sw link add br0 type bridge
  ip -n $sw link set br0 up
  for i in $(seq 0 $((n - 1))); do
    local h=$prefix$i
    ip netns add "$h"
    ip link add "v$h" type veth peer name "p$h"
    ip link set "v$h" netns "$h"
    ip link set "p$h" netns $sw
    ip -n "$h" link set "v$h" name eth0
    ip -n "$h" addr add "10.77.0.$((i + 1))/24" dev eth0
    ip -n "$h" link set lo up
    ip -n "$h" link set eth0 up
    ip -n $sw link set "p$h" master br0
    ip -n $sw link set "p$h" up
    if [ -n "$rate" ]; then
      ip netns exec "$h" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 20ms
    fi
  done
  echo "hosts.sh: $n hosts up: $(for i in $(seq 0 $((n - 1))); do printf '%s=10.77.0.%d ' $prefix$i $((i + 1)); done)${rate:+(links shaped to $rate)}"
}

down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^($prefix[0-9]+|$sw)$" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns"
  done
  # Open MPI's shared-memory segments and session directories, named after the hosts: the
  # processes killed above cannot remove them, and /dev/shm and /tmp are not the namespaces'
  rm -rf /dev/shm/vader_segment."$prefix"[0-9]* /tmp/ompi."$prefix"[0-9]*
}

run_mpirun() {
  local hosts; hosts=$(ip netns list | awk '{print $1}' | grep -cE "^$prefix[0-9]+$" || true)
  [ "$hosts" -gt 0 ] || { echo "hosts.sh: no hosts (hosts.sh up N first)" >&2; exit 1; }
  local hostfile=${HOSTFILE:-}
  if [ -z "$hostfile" ]; then
    hostfile=$(mktemp)
    for i in $(seq 1 "$hosts"); do echo "10.77.0.$i slots=${SLOTS:-1}"; done > "$hostfile"
  fi
  local flags=(--hostfile "$hostfile" --mca plm_rsh_agent "$here/netns-ssh"
    --mca btl tcp,vader,self --mca pml ob1 --mca btl_tcp_if_include 10.77.0.0/24
    --mca oob_tcp_if_include 10.77.0.0/24 --bind-to none -x OPENBLAS_NUM_THREADS)
  [ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
  local rc=0
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
    ip netns exec ${prefix}0 unshare --uts /bin/sh -c 'hostname "$0"; exec mpirun "$@"' \
    ${prefix}0 "${flags[@]}" "$@" || rc=$?
  [ -n "${HOSTFILE:-}" ] || rm -f "$hostfile"
  return $rc
}

case ${1:-} in
up) shift; up "$@" ;;
down) down ;;
mpirun) shift; run_mpirun "$@" ;;
*) echo "usage: hosts.sh up N [RATE] | down | mpirun ARGS..." >&2; exit 2 ;;
esac
