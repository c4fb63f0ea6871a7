#!/usr/bin/env bash
# [train] grad_compression (mpi/compress.h) in real training runs.
#   compression.sh bound N   one step at N ranks, bf16 and fp16, against the same step summed
#                            in float32: every parameter within the error bound of N 16-bit
#                            roundings of the ranks' gradients (gamma_N * sum_r |lr g_r|, with
#                            each rank's g_r measured by a 1-rank run on that rank's shard),
#                            plus float32 slack; and not equal (16 bits were summed)
#   compression.sh resume N  bf16, 40 steps straight = 20 steps, stop, --resume 20 (the
#                            ranks' residuals come back from the checkpoint: bit-exact); at
#                            another world size the run continues and warns
#   compression.sh nodes     4 ranks as 2 "nodes" of 2 (MPINET_TEST_NODE_RANKS): compressed
#                            between the nodes only; resume bit-exact; one node: said, off
source "$(dirname "$0")/lib.sh"
mode=${1:?bound, resume or nodes}
N=${2:-4}
PY=/usr/bin/python3
need_h5py

# 48 rows of 8 features, 3 classes; part-R.h5 holds rank R's shard (rows [R*48/N, (R+1)*48/N))
"$PY" - "$WORK" "$N" <<'PY'
import sys, numpy as np, h5py
work, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(5)
x = rng.normal(size=(48, 8)).astype(np.float32)
y = (np.argmax(x[:, :3] + 0.5 * rng.normal(size=(48, 3)), axis=1)).astype(np.int64)
def write(path, xs, ys):
    with h5py.File(path, "w") as f:
        f["/train/x"] = xs; f["/train/y"] = ys
        f["/test/x"] = x[:12]; f["/test/y"] = y[:12]
write(f"{work}/all.h5", x, y)
for r in range(n):
    lo, hi = r * 48 // n, (r + 1) * 48 // n
    write(f"{work}/part-{r}.h5", x[lo:hi], y[lo:hi])
PY

config() { # OUT DATA RUN BATCH [extra [train] lines]
  local out=$1 data=$2 run=$3 batch=$4; shift 4
  cat > "$out" <<INI
[data]
path = $data
shuffle = shard
classes = 3
[train]
epochs = 50
batch = $batch
lr = ${LR:-0.5}
momentum = 0
weight_decay = 0
schedule = constant
seed = 3
progress = lines
allreduce = ${ALLREDUCE:-mpi}
$(printf '%s\n' "$@")
[checkpoint]
dir = $run
[layer]
type = dense
units = 16
activation = tanh
[layer]
type = dense
units = 3
INI
}
params() { "$PY" -c 'import sys,h5py,numpy as np
f=h5py.File(sys.argv[1],"r"); out=[]
f["params"].visititems(lambda k,v: out.append(v[()].ravel()) if isinstance(v,h5py.Dataset) else None)
np.save(sys.argv[2], np.concatenate(out).astype(np.float64))' "$1" "$2"; }
latest() { echo "$1/$(cat "$1/latest")"; }

case $mode in
bound)
  LR=0 config "$WORK/p0.ini" "$WORK/all.h5" "$WORK/p0" 48 "max_steps = 1"
  run_mpi 1 train "$WORK/p0.ini" > /dev/null
  params "$(latest "$WORK/p0")" "$WORK/p0.npy"
  for r in $(seq 0 $((N - 1))); do # rank r's gradient, from its shard alone (local mean)
    config "$WORK/r$r.ini" "$WORK/part-$r.h5" "$WORK/r$r" $((48 / N)) "max_steps = 1"
    run_mpi 1 train "$WORK/r$r.ini" > /dev/null
    params "$(latest "$WORK/r$r")" "$WORK/r$r.npy"
  done
  for c in none bf16 fp16; do
    config "$WORK/$c.ini" "$WORK/all.h5" "$WORK/$c" 48 "max_steps = 1" "grad_compression = $c"
    run_mpi "$N" train "$WORK/$c.ini" > "$WORK/$c.out"
    params "$(latest "$WORK/$c")" "$WORK/$c.npy"
  done
  grep -q "gradient compression: bf16 sums in every MPI bucket" "$WORK/bf16.out" \
    || fail "the bf16 run does not say it compresses"
  "$PY" - "$WORK" "$N" <<'PY'
import sys, numpy as np
work, n = sys.argv[1], int(sys.argv[2])
p0, plain = np.load(f"{work}/p0.npy"), np.load(f"{work}/none.npy")
# a 1-rank run on shard r steps by lr * (its local mean gradient) = n * lr * g_r, where g_r is
# rank r's share of the global mean gradient (rows / global batch)
abs_sum = sum(np.abs(p0 - np.load(f"{work}/r{r}.npy")) / n for r in range(n))
f32 = 2.0 ** -24
for kind, u, floor in (("bf16", 2.0 ** -8, 0.0), ("fp16", 2.0 ** -11, 2.0 ** -25)):
    got = np.load(f"{work}/{kind}.npy")
    scale = 1 << (n - 1).bit_length()  # fp16: the power of two >= n the values are scaled by
    gamma = n * u / (1 - n * u)
    bound = (gamma * abs_sum + 0.5 * n * floor / scale
             + (n + 2) * f32 * abs_sum + 4 * f32 * np.maximum(np.abs(p0), np.abs(plain)))
    worst = np.max(np.abs(got - plain) / bound)
    differ = np.count_nonzero(got != plain)
    print(f"{kind} at {n} ranks: one step, worst |difference| {worst:.3f} of the 16-bit bound; "
          f"{differ} of {got.size} parameters differ from the float32 step")
    if not worst <= 1.0: sys.exit(f"FAIL: {kind} beyond the 16-bit error bound")
    if differ == 0: sys.exit(f"FAIL: {kind} changed nothing (was anything compressed?)")
PY
  ;;
resume)
  config "$WORK/a.ini" "$WORK/all.h5" "$WORK/a" 48 "max_steps = 40" "grad_compression = bf16"
  run_mpi "$N" train "$WORK/a.ini" > "$WORK/a.out"
  config "$WORK/b.ini" "$WORK/all.h5" "$WORK/b" 48 "max_steps = 20" "grad_compression = bf16"
  run_mpi "$N" train "$WORK/b.ini" > /dev/null
  "$PY" -c 'import sys,h5py; f=h5py.File(sys.argv[1],"r"); r=f["/compression/residuals"]
assert r.shape[0]==int(sys.argv[2]), r.shape; assert f["compression"].attrs["kind"]==b"bf16" or f["compression"].attrs["kind"]=="bf16"
assert abs(r[()]).max() > 0, "all residuals zero"' "$(latest "$WORK/b")" "$N" \
    || fail "the checkpoint lacks every rank's residuals"
  run_mpi "$N" train --resume "$WORK/b" --set train.max_steps=40 > "$WORK/b.out"
  [ "$(sha_of "$WORK/a.out")" = "$(sha_of "$WORK/b.out")" ] \
    || fail "stop at 20 + resume differs from 40 straight steps"
  echo "ok: $N ranks, bf16: 20 steps + resume = 40 straight steps ($(sha_of "$WORK/a.out" | cut -c1-16))"
  other=$((N == 2 ? 3 : 2))
  run_mpi "$other" train --resume "$WORK/b" --set train.max_steps=60 > "$WORK/c.out" 2> "$WORK/c.err"
  grep -q "residuals of $N ranks.*this run has $other ranks.*restart from zero" "$WORK/c.err" \
    || fail "no warning when resuming $N ranks' residuals at $other"
  grep -q "^done:" "$WORK/c.out" || fail "the resume at $other ranks did not finish"
  echo "ok: resumed at $other ranks with a warning, residuals from zero"
  ;;
nodes)
  export ALLREDUCE=auto MPINET_TEST_NODE_RANKS=2
  MPIRUN_FLAGS+=(-x MPINET_TEST_NODE_RANKS)
  config "$WORK/a.ini" "$WORK/all.h5" "$WORK/a" 48 "max_steps = 30" "grad_compression = bf16"
  run_mpi 4 train "$WORK/a.ini" > "$WORK/a.out"
  grep -q "gradient compression: bf16 sums between the nodes" "$WORK/a.out" \
    || fail "4 ranks on 2 nodes: not compressed between the nodes"
  config "$WORK/n.ini" "$WORK/all.h5" "$WORK/n" 48 "max_steps = 30"
  run_mpi 4 train "$WORK/n.ini" > "$WORK/n.out"
  [ "$(sha_of "$WORK/a.out")" != "$(sha_of "$WORK/n.out")" ] || fail "bf16 between nodes changed nothing"
  config "$WORK/b.ini" "$WORK/all.h5" "$WORK/b" 48 "max_steps = 15" "grad_compression = bf16"
  run_mpi 4 train "$WORK/b.ini" > /dev/null
  run_mpi 4 train --resume "$WORK/b" --set train.max_steps=30 > "$WORK/b.out"
  [ "$(sha_of "$WORK/a.out")" = "$(sha_of "$WORK/b.out")" ] || fail "2 nodes: resume not bit-exact"
  echo "ok: 2 nodes of 2 ranks: compressed between the nodes, 15 + resume 15 = 30 straight"
  unset MPINET_TEST_NODE_RANKS
  MPIRUN_FLAGS=(--oversubscribe --bind-to none)
  [ "$(id -u)" = 0 ] && MPIRUN_FLAGS+=(--allow-run-as-root)
  config "$WORK/o.ini" "$WORK/all.h5" "$WORK/o" 48 "max_steps = 5" "grad_compression = bf16"
  run_mpi 2 train "$WORK/o.ini" > "$WORK/o.out"
  grep -q "gradient compression: off: all 2 ranks sum in one node's shared memory" "$WORK/o.out" \
    || fail "one node: the run does not say compression is off"
  echo "ok: one node: compression off, said at start-up"
  ;;
*) fail "unknown mode $mode" ;;
esac
