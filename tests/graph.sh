#!/usr/bin/env bash
# A layer graph trained end to end (issue 28): a tiny ResNet (residual add, a strided block
# whose shortcut is a 1x1 convolution, concat, SyncBN, dropout) with [augment].
# - N ranks train what 1 rank trains (relative 1e-5; 3 ranks split the batch unevenly);
# - 25 steps + --resume to 40 = 40 straight, to the bit, at N ranks;
# - reproducible mode (sync = false: it refuses SyncBN) gives the same bits at 1, 2 (and 4);
# - `mpinet eval` (forward-only memory plan) reports what training's evaluation reported;
# - `mpinet predict`'s outputs equal the same graph built from PyTorch's own layers and
#   loaded from the checkpoint (jobs/bench/torch_net.py, relative 1e-4).
#   graph.sh N
source "$(dirname "$0")/lib.sh"
N=${1:?world size}
need_h5py
/usr/bin/python3 - "$WORK" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(4)
with h5py.File(f"{sys.argv[1]}/img.h5", "w") as f:
    for split, n in (("train", 960), ("test", 96)):
        y = rng.integers(0, 4, size=n).astype(np.int32)
        x = rng.integers(0, 60, size=(n, 2, 12, 12))  # a bright square in the class's quadrant
        for i, c in enumerate(y):
            r, q = 6 * (c // 2), 6 * (c % 2)
            x[i, :, r + 1:r + 5, q + 1:q + 5] += 150
        f[f"{split}/x"], f[f"{split}/y"] = x.astype(np.uint8), y
    f.attrs["classes"] = 4
PY
job() { # job OUT SYNC
  cat > "$1" <<INI
[data]
path = $WORK/img.h5
[train]
epochs = 3
batch = 48
lr = 0.05
momentum = 0.9
nesterov = true
seed = 3
max_steps = 40
progress = lines
[augment]
crop_padding = 1
flip = horizontal
erasing = 0.3
[layer]
type = conv2d
filters = 4
size = 3
padding = 1
bias = false
[layer]
name = stem
type = batchnorm
sync = $2
activation = relu
[layer]
type = conv2d
filters = 4
size = 3
padding = 1
bias = false
[layer]
type = batchnorm
sync = $2
activation = relu
[layer]
type = dropout
rate = 0.2
[layer]
type = conv2d
filters = 4
size = 3
padding = 1
bias = false
[layer]
name = b1_2
type = batchnorm
sync = $2
[layer]
name = b1
type = add
inputs = stem, b1_2
activation = relu
[layer]
type = conv2d
filters = 6
size = 3
stride = 2
padding = 1
bias = false
[layer]
name = b2_1
type = batchnorm
sync = $2
activation = relu
[layer]
name = proj
type = conv2d
inputs = b1
filters = 6
size = 1
stride = 2
[layer]
type = concat
inputs = b2_1, proj
[layer]
type = global_avgpool
[layer]
type = dense
units = 4
INI
}
job "$WORK/sync.ini" true
job "$WORK/local.ini" false
for n in 1 "$N"; do
  run_mpi "$n" train "$WORK/sync.ini" --set checkpoint.dir="$WORK/runs/g$n" > "$WORK/g$n.txt" \
    || { cat "$WORK/g$n.txt"; fail "the graph at $n ranks"; }
done
grep -q "^  07 add .* b1 <- 01 (stem), 06 (b1_2)$" "$WORK/g1.txt" || { cat "$WORK/g1.txt"; fail "no graph in the model lines"; }
grep -q '^activation memory: [0-9.]* MB planned for forward and backward of [0-9]* rows' "$WORK/g1.txt" \
  || fail "no planned memory in the start-up lines"
ck="$WORK/runs/g$N/ckpt-00000040.h5"
# The control: the tolerance means something only where the trajectory is not on a knife's
# edge. A ReLU that flips on a constant (erased) region moves a batch norm's beta by 1e-3
# (seed 7 does that between steps 35 and 36, at 1 rank with lr x (1 + 2e-7) too), so the
# same 1 rank with lr nudged by 2e-7 (relative) must stay within the tolerance first.
run_mpi 1 train "$WORK/sync.ini" --set train.lr=0.05000001 --set checkpoint.dir="$WORK/runs/nudged" \
  > /dev/null
"$TEST_TOOLS/compare_params" "$WORK/runs/g1/ckpt-00000040.h5" "$WORK/runs/nudged/ckpt-00000040.h5" \
  --rtol 1e-5 || fail "the control: 1 rank with lr nudged by 2e-7 moved past the tolerance"
"$TEST_TOOLS/compare_params" "$WORK/runs/g1/ckpt-00000040.h5" "$ck" --rtol 1e-5 \
  || fail "$N ranks differ from 1"
echo "ok: the graph (residual add, concat, SyncBN, dropout, augmentation) at $N ranks = 1 rank"
run_mpi "$N" train "$WORK/sync.ini" --set train.max_steps=25 --set checkpoint.dir="$WORK/runs/part" \
  > /dev/null
run_mpi "$N" train --resume "$WORK/runs/part" --set train.max_steps=40 > "$WORK/resumed.txt"
[ "$(sha_of "$WORK/resumed.txt")" = "$(sha_of "$WORK/g$N.txt")" ] || fail "25 steps + resume != 40 straight"
echo "ok: 25 steps + resume = 40 straight at $N ranks"
for n in 1 2 $([ "$N" = 4 ] && echo 4); do
  run_mpi "$n" train "$WORK/local.ini" --set train.reproducible=true \
    --set checkpoint.dir="$WORK/runs/repro-$n" > "$WORK/repro-$n.txt" \
    || { cat "$WORK/repro-$n.txt"; fail "reproducible at $n ranks"; }
  [ "$(sha_of "$WORK/repro-$n.txt")" = "$(sha_of "$WORK/repro-1.txt")" ] \
    || fail "reproducible mode: $n ranks differ from 1"
done
echo "ok: reproducible mode, the same bits at 1 to $([ "$N" = 4 ] && echo 4 || echo 2) ranks"
# eval: the forward-only plan computes what training's evaluation computed
run_mpi "$N" eval "$ck" "$WORK/img.h5" --json > "$WORK/eval.txt" || { cat "$WORK/eval.txt"; fail "eval"; }
grep -q 'activation memory: [0-9.]* MB planned for forward passes' "$WORK/eval.txt" || fail "eval: no plan line"
want=$(tail -n 1 "$WORK/runs/g$N/metrics.jsonl")
got=$(grep '^{' "$WORK/eval.txt")
/usr/bin/python3 - "$want" "$got" <<'PY' || fail "eval differs from training's evaluation: $got vs $want"
import json, sys
w, g = json.loads(sys.argv[1]), json.loads(sys.argv[2])
# metrics.jsonl keeps 6 significant digits
assert g["correct"] == w["test_correct"] and abs(g["loss"] - w["test_loss"]) <= 5e-6 * w["test_loss"], (w, g)
assert g["activation_bytes"] < g["activation_bytes_one_per_layer"], g
PY
got="loss $(echo "$got" | grep -o '"loss": [0-9.]*'), $(echo "$got" | grep -o '"correct": [0-9]*')"
want="test_loss $(echo "$want" | grep -o '"test_loss": [0-9.]*')"
echo "ok: eval (forward-only plan): $got; training said: $want"
run_mpi "$N" predict "$ck" "$WORK/img.h5" --x /test/x -o "$WORK/pred.h5" > /dev/null
/usr/bin/python3 "$(dirname "$0")/../jobs/bench/torch_net.py" "$ck" "$WORK/img.h5" /test/x "$WORK/pred.h5" \
  || fail "predict differs from PyTorch"
echo "ok: predict = PyTorch's layers loaded from the checkpoint"
