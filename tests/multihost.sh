#!/usr/bin/env bash
# Training across emulated hosts (jobs/emulate/hosts.sh: network namespaces joined by a
# bridge; mpirun starts its daemons through an ssh stand-in, TCP between hosts) must give
# the same parameters, bit for bit, as the same job on one host: 2 hosts x 1 rank against
# 2 local ranks, 3 hosts x 1 rank against 3 local ranks, and 2 hosts x 2 ranks against 4,
# through MPI; and 2 hosts x 2 ranks summing in each host's shared memory first against 4
# local ranks in two groups of 2 that do the same (MPINET_TEST_NODE_RANKS).
# The namespaces are always removed. Skipped (exit 77) only when not root.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: creating network namespaces needs root"; exit 77; }
HOSTS=$(cd "$(dirname "$0")/.." && pwd)/jobs/emulate/hosts.sh
trap '"$HOSTS" down; rm -rf "$WORK"' EXIT
make_blobs "$WORK/d.h5" --train 2400 --test 200 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/unused"
sed -i 's/^units = 32$/units = 256/; s/^batch = 48$/batch = 96/' "$WORK/job.ini"
final=ckpt-00000050.h5 # 2 epochs x 25 steps

# across HOSTS hosts with SLOTS ranks each vs HOSTS*SLOTS ranks on this host, summing through
# MODE: mpi, or node (the default: with 2+ ranks per host, each host's shared memory and then
# MPI across hosts; the local run plays hosts of SLOTS ranks through the test hook)
check() {
  local hosts=$1 slots=$2 mode=$3 n=$(($1 * $2)) hook=()
  [ "$mode" = node ] && hook=(env MPINET_TEST_NODE_RANKS="$slots")
  "$HOSTS" up "$hosts"
  SLOTS=$slots timeout -k 5 120 "$HOSTS" mpirun -np "$n" "$MPINET" train "$WORK/job.ini" \
    --set checkpoint.dir="$WORK/hosts$hosts-$slots-$mode" --set train.allreduce="$mode" \
    > "$WORK/hosts.log" 2>&1 || { cat "$WORK/hosts.log"; fail "training across $hosts hosts failed"; }
  grep -q "replicas identical on all $n ranks" "$WORK/hosts.log" || fail "replicas differ"
  if [ "$mode" = node ]; then
    grep -q "then across the nodes by MPI" "$WORK/hosts.log" || fail "the hosts did not sum in shared memory"
  fi
  "${hook[@]}" timeout -k 5 120 mpirun "${MPIRUN_FLAGS[@]}" -np "$n" "$MPINET" train "$WORK/job.ini" \
    --set checkpoint.dir="$WORK/local$n-$hosts-$mode" --set train.allreduce="$mode" > /dev/null
  echo -n "$hosts hosts x $slots ranks vs $n local ranks ($mode): "
  "$TEST_TOOLS/compare_params" "$WORK/local$n-$hosts-$mode/$final" \
    "$WORK/hosts$hosts-$slots-$mode/$final" --exact
}
check 2 1 mpi
check 3 1 mpi
check 2 2 mpi
check 2 2 node
# the ranks really run on different hosts: each sees its own hostname and address
"$HOSTS" up 3
seen=$("$HOSTS" mpirun -np 3 sh -c 'echo "$(hostname) $(ip -4 -o addr show eth0 | grep -o "inet [0-9.]*")"' | sort)
echo "$seen"
[ "$seen" = "$(printf 'mnh0 inet 10.77.0.1\nmnh1 inet 10.77.0.2\nmnh2 inet 10.77.0.3')" ] \
  || fail "the ranks are not one per host"
