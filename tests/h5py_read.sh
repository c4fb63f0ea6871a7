#!/usr/bin/env bash
# Other tools can use mpinet's files: with h5py (Debian's python3-h5py, run with
# /usr/bin/python3) and numpy alone, read a converted Fashion-MNIST dataset (uint8 pixels,
# scale/mean/std attributes) and a checkpoint (attributes, Fletcher32-checked float32
# tensors, the stored config), run the MLP's forward pass from the checkpoint's tensors,
# and classify the test split exactly as `mpinet eval` does.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c "import h5py, numpy" 2> /dev/null || fail "python3-h5py is not installed (jobs/setup.sh installs it)"
src=/usr/share/datasets/fashion-mnist
"$MPINET" convert idx --train-images $src/train-images-idx3-ubyte.gz \
  --train-labels $src/train-labels-idx1-ubyte.gz --test-images $src/t10k-images-idx3-ubyte.gz \
  --test-labels $src/t10k-labels-idx1-ubyte.gz -o "$WORK/fm.h5" > /dev/null
cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/fm.h5
[train]
batch = 128
max_steps = 40
lr = 0.05
momentum = 0.9
progress = lines
[checkpoint]
dir = $WORK/run
[layer]
type = reshape
shape = 784
[layer]
type = dense
units = 64
activation = relu
[layer]
type = dense
units = 32
activation = tanh
[layer]
type = dense
units = 10
INI
run_mpi 2 train "$WORK/job.ini" > /dev/null
ckpt=$WORK/run/$(cat "$WORK/run/latest")
expect=$("$MPINET" eval "$ckpt" "$WORK/fm.h5" | grep -Eo "correct [0-9]+ of [0-9]+")
echo "mpinet eval: $expect"
/usr/bin/python3 - "$WORK/fm.h5" "$ckpt" "$expect" <<'PY'
import sys
import h5py
import numpy as np

data_path, ckpt_path, expect = sys.argv[1:4]
with h5py.File(data_path, "r") as d:
    assert d.attrs["format"].decode() == "mpinet-dataset", dict(d.attrs)
    x = d["test/x"]
    assert x.dtype == np.uint8 and x.shape == (10000, 1, 28, 28), (x.dtype, x.shape)
    assert x.fletcher32, "dataset without checksums"
    y = d["test/y"][...]
    assert y.dtype == np.int32 and y.min() == 0 and y.max() == 9
    a = d.attrs["scale"] / d.attrs["std"]
    b = -d.attrs["mean"] / d.attrs["std"]
    inputs = x[...].reshape(10000, 784).astype(np.float32) * np.float32(a) + np.float32(b)

with h5py.File(ckpt_path, "r") as c:
    assert c.attrs["format"].decode() == "mpinet-checkpoint"
    assert c.attrs["step"] == 40 and c.attrs["world_size"] == 2, dict(c.attrs)
    assert "[layer]" in c.attrs["config"].decode()
    groups = sorted(c["params"].keys())
    assert groups == ["01_dense", "02_dense", "03_dense"], groups
    h = inputs
    for name, act in zip(groups, [lambda v: np.maximum(v, 0), np.tanh, lambda v: v]):
        W, bias = c["params"][name]["W"], c["params"][name]["b"]
        assert W.dtype == np.float32 and W.fletcher32
        h = act(h @ W[...].T + bias[...])
    assert "momentum" in "".join(c["optimizer/01_dense"].keys())

correct = int((h.argmax(axis=1) == y).sum())
got = f"correct {correct} of {len(y)}"
print(f"h5py + numpy: {got}")
assert got == expect, f"{got} != mpinet eval's {expect}"
PY
