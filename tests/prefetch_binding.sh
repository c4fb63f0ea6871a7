#!/usr/bin/env bash
# prefetch_binding.sh: data.prefetch = auto follows the CPUs mpirun gives each rank. Bound to
# one core (mpirun's default at np <= 2) a prefetch thread could only take time from its own
# rank, and a polling one would halve it: off. With CPUs to spare it runs, and polls only when
# every rank has one to burn. Forced on while bound, it runs without polling. A rank's BLAS
# threads (train.threads) take CPUs as ranks do.
source "$(dirname "$0")/lib.sh"
make_blobs "$WORK/d.h5" --train 480 --test 48 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run" "max_steps = 3"
cpus=$(nproc)

# check NAME EXPECTED NP BIND [mpinet args...]: the start-up line names EXPECTED; training
# finished
check() {
  local name=$1 want=$2 np=$3 bind=$4; shift 4
  rm -rf "$WORK/run"
  timeout -k 5 120 mpirun "${root[@]}" --oversubscribe --bind-to "$bind" -np "$np" "$MPINET" \
    train "$WORK/job.ini" "$@" > "$WORK/$name.log" 2>&1 \
    || { cat "$WORK/$name.log"; fail "$name: training failed"; }
  grep -q "prefetch $want$" "$WORK/$name.log" \
    || { grep "prefetch" "$WORK/$name.log"; fail "$name: expected 'prefetch $want'"; }
  grep -q "^done" "$WORK/$name.log" || fail "$name: did not finish"
  echo "ok: $name: prefetch $want"
}
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)

check bound "off (1 CPU for 1 rank)" 1 core
grep -q " | 1 BLAS thread per rank$" "$WORK/bound.log" || fail "bound: no '1 BLAS thread per rank'"
check bound-forced "on (1 CPU for 1 rank)" 1 core --set data.prefetch=true
if [ "$cpus" -ge 2 ]; then
  check unbound "on, polling ($cpus CPUs for 1 rank)" 1 none
  # as many BLAS threads as the rank has CPUs: none to spare; the large GEMMs are OpenBLAS's,
  # whose threads use them (the AVX-512 kernels of gemm.h run on one thread)
  check unbound-threads "off ($cpus CPUs for 1 rank)" 1 none --set train.threads="$cpus"
  grep -q " | $cpus BLAS threads per rank (large GEMMs on OpenBLAS)$" "$WORK/unbound-threads.log" \
    || { head -1 "$WORK/unbound-threads.log"; fail "unbound-threads: the threads not named"; }
fi
if [ "$cpus" -gt 2 ]; then want="on"; [ "$cpus" -ge 4 ] && want="on, polling"; else want="off"; fi
check unbound-np2 "$want ($cpus CPUs for 2 ranks)" 2 none
