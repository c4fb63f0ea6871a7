#!/usr/bin/env bash
# A /dev/shm without room for the shared gradients (containers often mount 64 MB) must not
# end in SIGBUS when a page is first touched, nor in a hang (Open MPI's own shared windows
# hang there): with allreduce = auto the run sums through MPI and says why; with allreduce =
# node it fails at once, naming the key and the reason; no file is left in /dev/shm. The
# small /dev/shm (16 MB, for a 20 MB window) is a tmpfs mounted in a private mount namespace:
# the machine's own is not touched. Skipped (exit 77) when not root.
[ "$(id -u)" = 0 ] || { echo "SKIP: a private mount namespace needs root"; exit 77; }
if [ -z "${MPINET_IN_NS:-}" ]; then exec unshare -m env MPINET_IN_NS=1 bash "$0" "$@"; fi
source "$(dirname "$0")/lib.sh"
mount -t tmpfs -o size=16m tmpfs /dev/shm
make_blobs "$WORK/d.h5" --train 480 --test 48 --features 784 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run" "max_steps = 3"
sed -i 's/^units = 32$/units = 2048/' "$WORK/job.ini" # 1.66M parameters: 3 x 6.6 MB shared
run_mpi 2 train "$WORK/job.ini" > "$WORK/auto.log" || { cat "$WORK/auto.log"; fail "the auto run failed"; }
grep -q "MPI: not in shared memory because cannot allocate [0-9.]* MB in /dev/shm for the shared gradients (No space left on device)" "$WORK/auto.log" \
  || { cat "$WORK/auto.log"; fail "the auto run did not fall back to MPI with the reason"; }
grep -q "^done:" "$WORK/auto.log" || fail "the auto run did not finish"
rm -rf "$WORK/run"
expect_error 10 "--set train.allreduce: node: cannot sum in shared memory: cannot allocate [0-9.]+ MB in /dev/shm for the shared gradients \(No space left on device\)" \
  run_mpi 2 train "$WORK/job.ini" --set train.allreduce=node
leftover=$(ls /dev/shm | grep '^mpinet' || true)
[ -z "$leftover" ] || fail "left in /dev/shm: $leftover"
