#!/usr/bin/env bash
# [train] sync_every = K (local SGD) in real training runs.
#   local_sgd.sh reference N  plain SGD, K = 3, with and without sync_warmup_epochs: after
#                             averages (warm-up 0: steps 3, 9, 10 = an epoch's end, 15, 20;
#                             0.5 epochs = 5 steps: 3 (synchronous), 8, 10, 14, 20) the replicas
#                             are identical (the run checks) and equal a float64 numpy
#                             replay of the same schedule: ranks step alone on their own rows,
#                             parameters averaged every K steps and at each epoch's end
#   local_sgd.sh resume N     momentum 0.9, K = 3: 10 steps (an epoch's end, mid-period) +
#                             --resume 10 = 20 straight steps, bit for bit
#   local_sgd.sh stop N       a stop request at step 7 (between averages, MPINET_FAULT=stop):
#                             exit 75 after averaging (its checkpoint = a run that ends at step
#                             7) and checkpointing; --resume continues exactly as after that run;
#                             a rank a batch ahead, or with a NaN gradient, at a local step (8)
#                             stops the job as at a synchronous one
# Data: rank r's shard holds one row, repeated (rows [40r, 40r + 40)), so a rank's batch
# gradient does not depend on which of its rows it drew and the replay needs no sampler.
source "$(dirname "$0")/lib.sh"
mode=${1:?reference, resume or stop}
N=${2:-2}
PY=/usr/bin/python3
need_h5py

"$PY" - "$WORK" "$N" <<'PY'
import sys, numpy as np, h5py
work, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(9)
xs = rng.normal(size=(n, 6)).astype(np.float32)
ys = np.arange(n) % 3
with h5py.File(f"{work}/data.h5", "w") as f:
    f["/train/x"] = np.repeat(xs, 40, axis=0); f["/train/y"] = np.repeat(ys, 40).astype(np.int64)
    f["/test/x"] = xs; f["/test/y"] = ys.astype(np.int64)
PY

config() { # OUT RUN [extra [train] lines]
  local out=$1 run=$2; shift 2
  cat > "$out" <<INI
[data]
path = $WORK/data.h5
shuffle = shard
classes = 3
[train]
epochs = 2
batch = $((4 * N))
lr = ${LR:-0.3}
momentum = ${MOMENTUM:-0}
weight_decay = 0
schedule = constant
seed = 4
progress = lines
sync_every = 3
$(printf '%s\n' "$@")
[checkpoint]
dir = $run
keep = 100
[layer]
type = dense
units = 12
activation = tanh
[layer]
type = dense
units = 3
INI
}
latest() { echo "$1/$(cat "$1/latest")"; }

case $mode in
reference)
  LR=0 config "$WORK/p0.ini" "$WORK/p0" "max_steps = 1"
  run_mpi 1 train "$WORK/p0.ini" > /dev/null
  declare -A points=([0]="3 9 10 15 20" [0.5]="3 8 10 14 20")
  for warm in 0 0.5; do
    for steps in ${points[$warm]}; do
      config "$WORK/w$warm-$steps.ini" "$WORK/w$warm-$steps" "max_steps = $steps" \
        "sync_warmup_epochs = $warm"
      run_mpi "$N" train "$WORK/w$warm-$steps.ini" > "$WORK/w$warm-$steps.out"
      grep -q "replicas identical on all $N ranks" "$WORK/w$warm-$steps.out" \
        || fail "replicas differ after step $steps"
    done
  done
  "$PY" - "$WORK" "$N" "$(latest "$WORK/p0")" <<'PY'
import sys, numpy as np, h5py
work, n, p0path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(path):
    with h5py.File(path, "r") as f:
        return {k: {t: f["params"][k][t][()].astype(np.float64) for t in f["params"][k]}
                for k in f["params"]}
with h5py.File(f"{work}/data.h5", "r") as f:
    xs, ys = f["/test/x"][()].astype(np.float64), f["/test/y"][()]
def grad(P, x, y):  # one row's cross-entropy gradient (a rank's batch mean: its only row)
    (l0, l1) = sorted(P)
    h = np.tanh(P[l0]["W"] @ x + P[l0]["b"])
    z = P[l1]["W"] @ h + P[l1]["b"]
    p = np.exp(z - z.max()); p /= p.sum(); p[y] -= 1.0
    dh = (P[l1]["W"].T @ p) * (1 - h * h)
    return {l0: {"W": np.outer(dh, x), "b": dh}, l1: {"W": np.outer(p, h), "b": p}}
def step(P, G, lr):
    return {k: {t: P[k][t] - lr * G[k][t] for t in P[k]} for k in P}
def mean(Ps):
    return {k: {t: sum(P[k][t] for P in Ps) / len(Ps) for t in Ps[0][k]} for k in Ps[0]}
lr, K, spe = 0.3, 3, 10
worst_all = 0.0
for warm_epochs in ("0", "0.5"):
    warm = int(np.ceil(float(warm_epochs) * spe))
    reps = [load(p0path) for _ in range(n)]
    for s in range(20):
        if s < warm:  # synchronous: the global mean gradient
            G = mean([grad(reps[0], xs[r], ys[r]) for r in range(n)])
            reps = [step(P, G, lr) for P in reps]
        else:
            reps = [step(reps[r], grad(reps[r], xs[r], ys[r]), lr) for r in range(n)]
            if (s + 1 - warm) % K == 0 or (s + 1) % spe == 0:
                avg = mean(reps); reps = [avg] * n
        if s + 1 in {"0": (3, 9, 10, 15, 20), "0.5": (3, 8, 10, 14, 20)}[warm_epochs]:
            run = f"{work}/w{warm_epochs}-{s + 1}"
            got = load(f"{run}/{open(run + '/latest').read().strip()}")
            worst = max(np.max(np.abs(got[k][t] - reps[0][k][t]) / (1e-5 * (1 + np.abs(reps[0][k][t]))))
                        for k in got for t in got[k])
            worst_all = max(worst_all, worst)
            if not worst <= 1.0:
                sys.exit(f"FAIL: warm-up {warm_epochs} epochs, after step {s + 1}: "
                         f"{worst:.2f} x the tolerance (1e-5 relative) off the float64 replay")
print(f"ok: {n} ranks, K = 3, warm-up 0 and 0.5 epochs: after 5 averages each, parameters "
      f"within {worst_all:.3f} of the tolerance (1e-5 relative) of the float64 replay")
PY
  ;;
resume)
  export MOMENTUM=0.9
  config "$WORK/a.ini" "$WORK/a"
  run_mpi "$N" train "$WORK/a.ini" > "$WORK/a.out"
  config "$WORK/b.ini" "$WORK/b" "max_steps = 10"
  run_mpi "$N" train "$WORK/b.ini" > /dev/null
  run_mpi "$N" train --resume "$WORK/b" --set train.max_steps=20 > "$WORK/b.out"
  [ "$(sha_of "$WORK/a.out")" = "$(sha_of "$WORK/b.out")" ] || fail "10 + resume 10 != 20 straight"
  echo "ok: $N ranks, momentum, K = 3: 10 steps + resume = 20 straight ($(sha_of "$WORK/a.out" | cut -c1-16))"
  ;;
stop)
  export MOMENTUM=0.9
  config "$WORK/s.ini" "$WORK/s"
  rc=0
  plain_flags=("${MPIRUN_FLAGS[@]}")
  MPIRUN_FLAGS+=(-x MPINET_FAULT)
  MPINET_FAULT=stop:1:7 run_mpi "$N" train "$WORK/s.ini" > "$WORK/s.out" 2>&1 || rc=$?
  MPIRUN_FLAGS=("${plain_flags[@]}")
  [ "$rc" -eq 75 ] || { cat "$WORK/s.out"; fail "a stop request: exit $rc, not 75"; }
  grep -q "stopped by a signal after step 7" "$WORK/s.out" || fail "did not stop after step 7"
  config "$WORK/m.ini" "$WORK/m" "max_steps = 7"
  run_mpi "$N" train "$WORK/m.ini" > /dev/null
  "$PY" -c 'import sys,h5py; a,b=(h5py.File(p,"r").attrs["param_sha256"] for p in sys.argv[1:]); sys.exit(a!=b)' \
    "$(latest "$WORK/s")" "$(latest "$WORK/m")" \
    || fail "the stop's checkpoint is not the replicas' average after step 7"
  run_mpi "$N" train --resume "$WORK/s" > "$WORK/s2.out"
  run_mpi "$N" train --resume "$WORK/m" --set train.max_steps=0 > "$WORK/m2.out"
  [ "$(sha_of "$WORK/s2.out")" = "$(sha_of "$WORK/m2.out")" ] || fail "the resumed runs differ"
  echo "ok: $N ranks: a stop request at step 7 averaged, checkpointed (= a run ending at 7) and resumed exactly"
  # the step records still travel at every local step: a rank a batch ahead, a NaN gradient
  MPIRUN_FLAGS+=(-x MPINET_FAULT)
  config "$WORK/f.ini" "$WORK/f"
  MPINET_FAULT=skip-batch:1:8 expect_error 30 "ranks out of step at the gradient allreduce of step 8" \
    run_mpi "$N" train "$WORK/f.ini"
  config "$WORK/g.ini" "$WORK/g"
  MPINET_FAULT=nan-grad:1:8 expect_error 30 "non-finite gradient at step 8 \(epoch 1\) on rank 1" \
    run_mpi "$N" train "$WORK/g.ini"
  ;;
*) fail "unknown mode $mode" ;;
esac
