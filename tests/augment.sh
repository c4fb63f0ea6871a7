#!/usr/bin/env bash
# [augment] in training (src/augment.h): N ranks train what 1 rank trains, on uint8 images
# stored channel-first and on float images stored channel-last (augmented after the
# transpose); augmentation changes what is trained (else this proves nothing); a resumed run
# continues exactly; reproducible
# mode keeps the same bits at 1 and 2 ranks (and at N where N is 4); [augment] on flat samples
# stops the job with one line naming the section.
#   augment.sh N
source "$(dirname "$0")/lib.sh"
N=${1:?world size}
need_h5py
/usr/bin/python3 - "$WORK" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(3)
for name, layout in (("u8", "nchw"), ("f32", "nhwc")):
    with h5py.File(f"{sys.argv[1]}/{name}.h5", "w") as f:
        for split, n in (("train", 960), ("test", 96)):
            y = rng.integers(0, 4, size=n).astype(np.int32)
            # the class is a bright square in one quadrant: something to learn that moves
            x = rng.integers(0, 60, size=(n, 2, 12, 12))
            for i, c in enumerate(y):
                r, q = 6 * (c // 2), 6 * (c % 2)
                x[i, :, r + 1:r + 5, q + 1:q + 5] += 150
            x = x.astype(np.uint8) if name == "u8" else (x / 255.0).astype(np.float32)
            if layout == "nhwc": x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            f[f"{split}/x"], f[f"{split}/y"] = x, y
        f.attrs["classes"] = 4
PY
job() { # job OUT DATA LAYOUT [AUGMENT-LINES]
  cat > "$1" <<INI
[data]
path = $2
layout = $3
[train]
epochs = 3
batch = 48
lr = 0.05
momentum = 0.9
seed = 5
max_steps = 40
progress = lines
[checkpoint]
dir = $WORK/runs/$(basename "$1" .ini)
[layer]
type = conv2d
filters = 4
size = 3
padding = same
activation = relu
[layer]
type = maxpool
[layer]
type = dense
units = 4
INI
  [ -z "${4:-}" ] || printf '[augment]\n%b' "$4" >> "$1"
}
aug='crop_padding = 2\nflip = horizontal\nerasing = 0.5\n'
for d in u8:nchw f32:nhwc; do
  name=${d%%:*} layout=${d##*:}
  job "$WORK/$name-aug.ini" "$WORK/$name.h5" "$layout" "$aug"
  job "$WORK/$name-plain.ini" "$WORK/$name.h5" "$layout"
  for n in 1 "$N"; do
    run_mpi "$n" train "$WORK/$name-aug.ini" --set checkpoint.dir="$WORK/runs/$name-$n" \
      > "$WORK/$name-$n.txt" || { cat "$WORK/$name-$n.txt"; fail "$name at $n ranks"; }
  done
  grep -q '^augment (training batches): crop_padding 2, flip horizontal, erasing 0.5' "$WORK/$name-1.txt" \
    || fail "no start-up line for the augmentation"
  "$TEST_TOOLS/compare_params" "$WORK/runs/$name-1/ckpt-00000040.h5" \
    "$WORK/runs/$name-$N/ckpt-00000040.h5" --rtol 1e-5 || fail "$name: $N ranks differ from 1"
  run_mpi 1 train "$WORK/$name-plain.ini" > "$WORK/$name-plain.txt"
  [ "$(sha_of "$WORK/$name-plain.txt")" != "$(sha_of "$WORK/$name-1.txt")" ] \
    || fail "$name: augmentation changed nothing"
  echo "ok: $name ($layout): $N ranks = 1 rank with augmentation, which changes the training"
done
# resume: 25 steps (mid-epoch 2: the epoch's draws continue) + --resume to 40 = 40 straight
run_mpi "$N" train "$WORK/u8-aug.ini" --set train.max_steps=25 \
  --set checkpoint.dir="$WORK/runs/part" > /dev/null
run_mpi "$N" train --resume "$WORK/runs/part" --set train.max_steps=40 > "$WORK/resumed.txt"
[ "$(sha_of "$WORK/resumed.txt")" = "$(sha_of "$WORK/u8-$N.txt")" ] \
  || fail "with augmentation, 25 steps + resume != 40 straight at $N ranks"
echo "ok: 25 steps + resume = 40 straight at $N ranks"
# reproducible mode: the same bits at 1 and 2 ranks, and at N when N is a power of two
for n in 1 2 $([ "$N" = 4 ] && echo 4); do
  run_mpi "$n" train "$WORK/u8-aug.ini" --set train.reproducible=true \
    --set checkpoint.dir="$WORK/runs/repro-$n" > "$WORK/repro-$n.txt" \
    || { cat "$WORK/repro-$n.txt"; fail "reproducible at $n ranks"; }
  [ "$(sha_of "$WORK/repro-$n.txt")" = "$(sha_of "$WORK/repro-1.txt")" ] \
    || fail "reproducible mode with augmentation: $n ranks differ from 1"
done
echo "ok: reproducible mode with augmentation, the same bits at 1 to $([ "$N" = 4 ] && echo 4 || echo 2) ranks"
# flat samples
make_blobs "$WORK/flat.h5" --train 200 --test 50 --features 16 --classes 4
printf '[data]\npath = %s\n[train]\nmax_steps = 2\n[layer]\ntype = dense\nunits = 4\n[augment]\nflip = horizontal\n' \
  "$WORK/flat.h5" > "$WORK/flat.ini"
if run_mpi 2 train "$WORK/flat.ini" --set checkpoint.dir="$WORK/runs/flat" > "$WORK/flat.txt" 2>&1; then
  fail "[augment] on flat samples trained"
fi
grep -q "flat.ini:8: \[augment\]: augmentation is for images (C, H, W), and the data's samples are (16)" \
  "$WORK/flat.txt" || { cat "$WORK/flat.txt"; fail "no clear error for [augment] on flat samples"; }
[ "$(grep -c 'augmentation is for images' "$WORK/flat.txt")" = 1 ] || fail "the error is not one line"
echo "ok: [augment] on flat samples refused in one line"
