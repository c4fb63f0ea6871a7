#!/usr/bin/env bash
# Training on HDF5 files as users already have them (written by h5py: tests/make_own_data.py),
# without converting them. Variants:
#   sim N     one simulation file, /inputs float64 with per-feature mean/std array
#             attributes, /outputs float64 in physical units, no test split (test_fraction =
#             0.2): the file's arrays are applied (normalise = file), or the training rows'
#             statistics (normalise = feature, standardise_targets), the same bits at 1, N
#             and 4 ranks; N ranks equal 1 rank (rtol 1e-5); the held-out rows (their
#             fingerprint) are the same at 1, N and 4 ranks and after --resume at another
#             world size; eval finds the same held-out rows and loss (in the targets' units);
#             predict at N ranks equals an h5py + numpy forward pass (relative 1e-5)
#   shards    200 files of channel-last uint8 images and int64 labels, read by a glob: the
#             same images stored NHWC and NCHW train bit-identical parameters; read with the
#             wrong layout, the colour task stays at chance (and a warning says why); in shard
#             mode, streamed under a memory_mb below the data, it trains, keeps open files
#             bounded by max_open_files, and a mid-epoch resume is bit-exact; the CNN's
#             predictions equal PyTorch's layers (relative 1e-4) and NHWC = NCHW bit for bit
#   series    /X float32 (n, 20, 6), /y int16, [data] classes: an LSTM learns it at 1, 2 and 3
#             ranks, 3 ranks equal 1 rank (rtol 1e-5); its predictions equal PyTorch's LSTM
#   shared N  global mode at N ranks: the training rows (41 MB of float32) are held once per
#             node, in shared memory: the ranks' PSS summed (metrics.jsonl pss_mb) is at least
#             (N - 1) x 0.8 x 41 MB below share_memory = false, and the bits are the same
#   dtypes    the same values stored as uint8, int8, uint16, int16, int32, float16, float32
#             and float64 (labels uint8, int8, int64) train bit-identical parameters
#   bad       bad inputs: one error line naming the file and dataset, within seconds
source "$(dirname "$0")/lib.sh"
variant=${1:?variant}
N=${2:-2}
make_data() { /usr/bin/python3 "$(dirname "$0")/make_own_data.py" "$1" "$WORK"; }
check_predictions() { /usr/bin/python3 "$(dirname "$0")/predict_check.py" "$@"; }
fingerprint_of() { grep -o 'rows fingerprint [0-9a-f]*' "$1" | cut -d' ' -f3; }
last_ckpt() { ls "$1"/ckpt-*.h5 | sort | tail -1; }

case $variant in
sim)
  make_data sim
  cat > "$WORK/sim.ini" <<INI
[data]
path = $WORK/sim.h5
x = /inputs
y = /outputs
test_fraction = 0.2
normalise = feature
standardise_targets = true
[train]
loss = mse
epochs = 2
batch = 64
lr = 0.02
momentum = 0.9
seed = 3
progress = lines
[layer]
type = dense
units = 32
activation = tanh
[layer]
type = dense
units = 3
INI
  for n in 1 "$N" 4; do
    run_mpi "$n" train "$WORK/sim.ini" --set checkpoint.dir="$WORK/run$n" > "$WORK/log$n.txt"
  done
  cat "$WORK/log$N.txt"
  grep -q 'normalise feature (mean and std of the training rows, 64 values)' "$WORK/log1.txt" \
    || fail "normalise = feature not used"
  cmp "$WORK/run1/normalisation.json" "$WORK/run$N/normalisation.json" \
    && cmp "$WORK/run1/normalisation.json" "$WORK/run4/normalisation.json" \
    || fail "the training rows' statistics differ by world size"
  grep -q '"target_std": \[0.6' "$WORK/run1/normalisation.json" || fail "no target statistics"
  # a new run pointed at run1's directory is refused, and run1's statistics stay as they were
  cp "$WORK/run1/normalisation.json" "$WORK/before.json"
  expect_error 20 "already holds checkpoints of an earlier run" \
    run_mpi 2 train "$WORK/sim.ini" --set checkpoint.dir="$WORK/run1" --set data.test_fraction=0.4
  cmp "$WORK/before.json" "$WORK/run1/normalisation.json" || fail "a refused run rewrote run1's statistics"
  # the file's own per-feature arrays, when normalise = file
  run_mpi 1 train "$WORK/sim.ini" --set data.normalise=file --set train.max_steps=5 \
    --set checkpoint.dir="$WORK/file" > "$WORK/file.txt"
  grep -q 'normalise file, per feature' "$WORK/file.txt" || fail "the mean/std arrays were not used"
  grep -q 'test: 832 rows held out' "$WORK/log1.txt" \
    || fail "not 13 of the 63 blocks of 64 rows (20%) held out"
  f1=$(fingerprint_of "$WORK/log1.txt")
  [ -n "$f1" ] && [ "$f1" = "$(fingerprint_of "$WORK/log$N.txt")" ] \
    && [ "$f1" = "$(fingerprint_of "$WORK/log4.txt")" ] || fail "held-out rows differ by world size"
  "$TEST_TOOLS/compare_params" "$(last_ckpt "$WORK/run1")" "$(last_ckpt "$WORK/run$N")" \
    --rtol 1e-5 || fail "N=$N differs from N=1"
  # stopped after 30 steps at N ranks, resumed at 1: the same held-out rows
  run_mpi "$N" train "$WORK/sim.ini" --set checkpoint.dir="$WORK/r" --set train.max_steps=30 \
    > /dev/null
  run_mpi 1 train --resume "$WORK/r" --set train.max_steps=0 > "$WORK/resumed.txt"
  grep -q 'resuming from' "$WORK/resumed.txt" || fail "did not resume"
  [ "$(fingerprint_of "$WORK/resumed.txt")" = "$f1" ] || fail "held-out rows moved on resume"
  echo "ok: held-out rows $f1 at 1, $N and 4 ranks and after a resume; N=$N equals N=1"
  # eval: the same held-out rows, the same loss, in the targets' units
  ck=$(last_ckpt "$WORK/run$N")
  run_mpi "$N" eval "$ck" "$WORK/sim.h5" --json > "$WORK/eval.txt"
  cat "$WORK/eval.txt"
  grep -q '"rows": 832, "loss": ' "$WORK/eval.txt" || fail "eval did not find the 832 held-out rows"
  want=$(grep -o '"test_loss": [0-9.e+-]*' "$WORK/run$N/metrics.jsonl" | tail -1 | cut -d' ' -f2)
  got=$(grep -o '"loss": [0-9.e+-]*' "$WORK/eval.txt" | cut -d' ' -f2)
  awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d * d < (1e-5 * b) ^ 2) }' \
    || fail "eval's loss $got differs from training's test_loss $want"
  grep -q 'per output (mean squared error): 0: ' "$WORK/eval.txt" || fail "no per-output loss"
  # predict: every row, in order, against numpy; CSV holds the same numbers
  run_mpi "$N" predict "$ck" "$WORK/sim.h5" -o "$WORK/p.h5"
  check_predictions mlp-regression "$ck" "$WORK/sim.h5" /inputs "$WORK/p.h5"
  run_mpi 1 predict "$ck" "$WORK/sim.h5" -o "$WORK/p.csv" > /dev/null
  [ "$(head -1 "$WORK/p.csv")" = output_0,output_1,output_2 ] && [ "$(wc -l < "$WORK/p.csv")" -eq 4001 ] \
    || fail "the CSV predictions are not a header and 4000 rows"
  ;;
shards)
  make_data shards
  cat > "$WORK/shards.ini" <<INI
[data]
path = $WORK/nhwc/shard-*.h5
x = /images
y = /labels
layout = nhwc
test_fraction = 0.1
[train]
epochs = 3
batch = 32
lr = 0.05
momentum = 0.9
seed = 3
progress = lines
[layer]
type = conv2d
filters = 4
size = 1
activation = relu
[layer]
type = maxpool
size = 3
[layer]
type = dense
units = 3
INI
  run_mpi 2 train "$WORK/shards.ini" --set checkpoint.dir="$WORK/nhwc-run" > "$WORK/nhwc.txt"
  cat "$WORK/nhwc.txt"
  grep -q '(200 files): 4320 train rows, sample (3, 8, 8)' "$WORK/nhwc.txt" \
    || fail "200 files, 10% held out, (C, H, W) samples expected"
  run_mpi 2 train "$WORK/shards.ini" --set checkpoint.dir="$WORK/nchw-run" \
    --set data.path="$WORK/nchw/shard-*.h5" --set data.layout=nchw > "$WORK/nchw.txt"
  [ "$(sha_of "$WORK/nhwc.txt")" = "$(sha_of "$WORK/nchw.txt")" ] \
    || fail "NHWC and NCHW copies of the same images trained different parameters"
  acc() { grep -o 'test_accuracy [0-9.]*' "$1" | cut -d' ' -f2 | cut -d. -f1; }
  [ "$(acc "$WORK/nhwc.txt")" -ge 95 ] || fail "the right layout did not learn the colours"
  run_mpi 2 train "$WORK/shards.ini" --set checkpoint.dir="$WORK/auto-run" \
    --set data.layout=auto > "$WORK/auto.txt"
  grep -q 'warning: .*are read as (C, H, W) = (8, 8, 3); if they are channel-last images, set \[data\] layout = nhwc' \
    "$WORK/auto.txt" || fail "no warning for channel-last images read as (C, H, W)"
  [ "$(acc "$WORK/auto.txt")" -le 60 ] || fail "the wrong layout learnt the colours: the task tests nothing"
  for n in 1 3; do # global mode at the other world sizes
    run_mpi "$n" train "$WORK/shards.ini" --set checkpoint.dir="$WORK/np$n" > "$WORK/np$n.txt"
    [ "$(acc "$WORK/np$n.txt")" -ge 95 ] || fail "$n ranks did not learn the colours"
  done
  echo "ok: NHWC = NCHW bit for bit ($(sha_of "$WORK/nhwc.txt")), $(acc "$WORK/nhwc.txt")% vs $(acc "$WORK/auto.txt")% read the wrong way"
  # predictions: the same from either copy, and PyTorch's layers agree
  run_mpi 3 predict "$(last_ckpt "$WORK/nhwc-run")" "$WORK/nhwc/shard-1*.h5" -o "$WORK/nhwc.csv"
  run_mpi 2 predict "$(last_ckpt "$WORK/nchw-run")" "$WORK/nchw/shard-1*.h5" -o "$WORK/nchw.csv"
  cmp "$WORK/nhwc.csv" "$WORK/nchw.csv" || fail "NHWC and NCHW predictions differ"
  # 200 paths expanded by the shell (longer than any fixed buffer would hold)
  run_mpi 2 predict "$(last_ckpt "$WORK/nhwc-run")" "$WORK"/nhwc/shard-*.h5 -o "$WORK/all.csv" \
    | tee "$WORK/all.txt"
  grep -q '^predict: 4800 rows' "$WORK/all.txt" || fail "predict did not read all 200 files"
  run_mpi 3 predict "$(last_ckpt "$WORK/nhwc-run")" "$WORK/nhwc/shard-7.h5" -o "$WORK/c.h5"
  check_predictions cnn-nhwc "$(last_ckpt "$WORK/nhwc-run")" "$WORK/nhwc/shard-7.h5" /images "$WORK/c.h5"

  # shard mode, streamed: the rows (0.83 MB) under memory_mb = 0.2 per rank
  stream=(--set data.shuffle=shard --set data.memory_mb=0.2)
  run_mpi 2 train "$WORK/shards.ini" "${stream[@]}" --set data.max_open_files=4 \
    --set checkpoint.dir="$WORK/s4" > "$WORK/s4.txt"
  grep -q '^streaming: ' "$WORK/s4.txt" || fail "did not stream"
  [ "$(acc "$WORK/s4.txt")" -ge 95 ] || fail "streamed from 200 files, it did not learn"
  run_mpi 2 train "$WORK/shards.ini" "${stream[@]}" --set data.max_open_files=1000 \
    --set checkpoint.dir="$WORK/s1000" > /dev/null
  fds() { grep -o '"open_fds": [0-9]*' "$1/metrics.jsonl" | tail -1 | cut -d' ' -f2; }
  echo "open files: $(fds "$WORK/s4") with max_open_files = 4, $(fds "$WORK/s1000") with 1000"
  [ $(($(fds "$WORK/s4") + 50)) -lt "$(fds "$WORK/s1000")" ] \
    || fail "max_open_files does not bound the open files"
  # mid-epoch stop and resume, streamed: the same bits as straight through
  run_mpi 2 train "$WORK/shards.ini" "${stream[@]}" --set checkpoint.dir="$WORK/cut" \
    --set train.max_steps=200 > /dev/null
  run_mpi 2 train --resume "$WORK/cut" --set train.max_steps=0 > "$WORK/cut.txt"
  grep -q 'resuming from .* at step 200' "$WORK/cut.txt" || fail "did not resume at step 200"
  [ "$(sha_of "$WORK/cut.txt")" = "$(sha_of "$WORK/s4.txt")" ] \
    || fail "a mid-epoch resume of the streamed run differs from the straight run"
  echo "ok: streamed from 200 files; mid-epoch resume bit-exact"
  ;;
series)
  make_data series
  cat > "$WORK/series.ini" <<INI
[data]
path = $WORK/series.h5
x = /X
y = /y
classes = 3
test_fraction = 0.25
[train]
epochs = 3
batch = 32
optimizer = adam
lr = 0.01
seed = 3
progress = lines
[layer]
type = lstm
units = 16
[layer]
type = dense
units = 3
INI
  for n in 1 2 3; do
    run_mpi "$n" train "$WORK/series.ini" --set checkpoint.dir="$WORK/run$n" > "$WORK/log$n.txt"
    a=$(grep -o 'test_accuracy [0-9.]*' "$WORK/log$n.txt" | cut -d' ' -f2)
    echo "$n ranks: test accuracy $a%"
    (( $(echo "$a >= 90" | bc) )) || fail "$n ranks: $a% on the time series"
  done
  for n in 1 3; do
    run_mpi "$n" train "$WORK/series.ini" --set checkpoint.dir="$WORK/short$n" \
      --set train.max_steps=50 > /dev/null
  done
  "$TEST_TOOLS/compare_params" "$WORK/short1/ckpt-00000050.h5" "$WORK/short3/ckpt-00000050.h5" \
    --rtol 1e-5 || fail "3 ranks differ from 1"
  run_mpi 2 predict "$(last_ckpt "$WORK/run3")" "$WORK/series.h5" -o "$WORK/s.h5"
  check_predictions lstm "$(last_ckpt "$WORK/run3")" "$WORK/series.h5" /X "$WORK/s.h5"
  ;;
dtypes)
  make_data dtypes
  first=""
  for t in uint8 int8 uint16 int16 int32 float16 float32 float64; do
    write_mlp_config "$WORK/$t.ini" "$WORK/$t.h5" "$WORK/run-$t" "max_steps = 30"
    sed -i "s|^path = .*|path = $WORK/$t.h5\nx = /x\ny = /y\ntest_fraction = 0.2|" "$WORK/$t.ini"
    run_mpi 2 train "$WORK/$t.ini" > "$WORK/$t.txt"
    sha=$(sha_of "$WORK/$t.txt")
    echo "$t: $sha"
    [ -n "$sha" ] && { [ -z "$first" ] || [ "$sha" = "$first" ]; } || fail "$t trained other parameters"
    first=$sha
  done
  ;;
shared)
  make_blobs "$WORK/d.h5" --train 20000 --test 100 --features 512 --classes 4
  for share in true false; do
    write_mlp_config "$WORK/$share.ini" "$WORK/d.h5" "$WORK/run-$share" "max_steps = 20"
    run_mpi "$N" train "$WORK/$share.ini" --set data.share_memory=$share > "$WORK/$share.txt"
  done
  grep -q 'rows held once per node (shared memory)' "$WORK/true.txt" || fail "rows not shared"
  [ "$(sha_of "$WORK/true.txt")" = "$(sha_of "$WORK/false.txt")" ] || fail "shared rows changed the bits"
  pss() { grep -o '"pss_mb": [0-9.]*' "$WORK/run-$1/metrics.jsonl" | tail -1 | cut -d' ' -f2; }
  echo "PSS of the $N ranks: $(pss true) MB with one copy per node, $(pss false) MB with one per rank"
  awk -v a="$(pss true)" -v b="$(pss false)" -v n="$N" \
    'BEGIN { exit !(b - a >= (n - 1) * 0.8 * 20000 * 512 * 4 / 1048576) }' \
    || fail "one copy per node did not save (N - 1) copies of the rows"
  ;;
bad)
  /usr/bin/python3 "$(dirname "$0")/make_own_data.py" bad "$WORK/bad"
  B=$WORK/bad
  cat > "$WORK/bad.ini" <<INI
[data]
path = $B/shape/s*.h5
x = /images
y = /labels
layout = nhwc
test_fraction = 0.1
[train]
batch = 16
[layer]
type = dense
units = 3
INI
  train() { run_mpi 2 train "$WORK/bad.ini" --set checkpoint.dir="$WORK/run" "$@"; }
  expect_error 20 "$B/shape/s137.h5: /images is uint8 \(4, 8, 8, 4\) but $B/shape/s000.h5 has uint8 \(4, 8, 8, 3\)" \
    train
  expect_error 20 "$B/dtype/s137.h5: /images is float32 \(4, 8, 8, 3\) but $B/dtype/s000.h5 has uint8" \
    train --set data.path="$B/dtype/s*.h5"
  expect_error 20 "$B/label/s137.h5: /labels\[2\] = 7 is outside \[0, classes = 3\)" \
    train --set data.path="$B/label/s*.h5"
  expect_error 20 "$B/none-\*.h5: matches no file" train --set data.path="$B/none-*.h5"
  expect_error 20 "$B/short1.h5: /x has 30 rows but /y has 29" \
    train --set data.path="$B/short0.h5, $B/short1.h5" --set data.x=/x --set data.y=/y \
    --set data.layout=auto
  flat=(--set data.path="$B/flat.h5" --set data.x=/x --set data.test_fraction=0.5)
  expect_error 20 "$B/flat.h5: /x has samples of shape \(5\): layout = nhwc needs \(H, W, C\) samples" \
    train "${flat[@]}" --set data.y=/labels
  expect_error 20 "$B/flat.h5: attribute 'mean' of /x has 4 values; it must be one number, or one per feature \(5\)" \
    train "${flat[@]}" --set data.y=/labels --set data.layout=auto
  expect_error 20 "cross_entropy needs integer class labels but $B/flat.h5: /y holds float targets; use loss = mse" \
    train "${flat[@]}" --set data.y=/y --set data.layout=auto --set data.normalise=none
  expect_error 20 "data.test_fraction: must be below 1" train --set data.test_fraction=1
  expect_error 20 "data.test_fraction: 1.5 is out of range" train --set data.test_fraction=1.5
  expect_error 20 "test_fraction = 0.001 holds out 0 of its 200 blocks" \
    train --set data.path="$B/label/s*.h5" --set data.test_fraction=0.001
  ;;
*) fail "unknown variant $variant" ;;
esac
