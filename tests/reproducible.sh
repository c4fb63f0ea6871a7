#!/usr/bin/env bash
# [train] reproducible = true: the same bits at every power-of-two world size.
#   reproducible.sh mlp      MLP with dropout, 200 steps at 1, 2, 4 and 8 ranks: the SHA-256
#                            of the final parameters, every checkpoint (parameters, optimizer
#                            state) and every metric identical; saved at 4 ranks and resumed
#                            at 2, identical to the uninterrupted 1-rank run; dense weight
#                            gradients computed once per step give the bits of the plain
#                            per-micro-batch path; the normal mode at 4 ranks differs from
#                            1 rank in the last bits (so the identity above is the mode's
#                            doing, not luck of a tiny model).
#   reproducible.sh conv     conv + batch norm (per micro-batch) + max pool + dropout, and an
#                            LSTM, at 1, 2 and 4 ranks: identical, batch-norm statistics too.
source "$(dirname "$0")/lib.sh"
variant=${1:?mlp or conv}


# metrics without the fields that measure time or the machine
numbers() {
  sed -E 's/"(samples_per_s|wall_s|train_seconds|time_[a-z_]+_s|peak_rss_mb|first_step_unix|rss_mb|pss_mb|open_fds|hdf5_objects|world_size|bucket_mb|prefetch)": [^,}]+,? ?//g' "$1"
}

# same_runs REF RUN...: final SHA-256, every checkpoint and the metrics of each RUN equal REF's
same_runs() {
  local ref=$1; shift
  local want; want=$(sha_of "$WORK/$ref.log")
  [ -n "$want" ] || fail "$ref printed no parameters sha256"
  [ "$(wc -l < "$WORK/$ref/metrics.jsonl")" -ge 2 ] || fail "$ref wrote too few metrics"
  for run in "$@"; do
    local got; got=$(sha_of "$WORK/$run.log")
    [ "$got" = "$want" ] || fail "$run: parameters sha256 $got, but $ref: $want"
    for ck in "$WORK/$ref"/ckpt-*.h5; do
      local other="$WORK/$run/$(basename "$ck")"
      [ -f "$other" ] || fail "$run has no $(basename "$ck")"
      "$TEST_TOOLS/compare_params" "$ck" "$other" --exact > /dev/null \
        || fail "$run: $(basename "$ck") differs from $ref's"
      h5diff "$ck" "$other" /optimizer /optimizer || fail "$run: optimizer state differs"
      [ "$(h5dump -a param_sha256 "$ck" | grep -o '"[0-9a-f]\{64\}"')" = \
        "$(h5dump -a param_sha256 "$other" | grep -o '"[0-9a-f]\{64\}"')" ] \
        || fail "$run: param_sha256 of $(basename "$ck") differs"
    done
    diff <(numbers "$WORK/$ref/metrics.jsonl") <(numbers "$WORK/$run/metrics.jsonl") \
      || fail "$run: metrics differ from $ref's"
    echo "ok: $run = $ref (sha256 $got, $(ls "$WORK/$ref"/ckpt-*.h5 | wc -l) checkpoints, metrics)"
  done
}

# run NAME N INI [ARGS...]: train at N ranks into $WORK/NAME
run() {
  local name=$1 n=$2 ini=$3; shift 3
  run_mpi "$n" train "$ini" --set "checkpoint.dir=$WORK/$name" "$@" > "$WORK/$name.log" \
    || { cat "$WORK/$name.log"; fail "$name failed"; }
  grep -q "^reproducible: " "$WORK/$name.log" || [[ "$name" == normal* ]] \
    || fail "$name: not in reproducible mode"
}

case $variant in
mlp)
  make_blobs "$WORK/d.h5" --train 3200 --test 300 --features 16 --classes 4 --seed 3
  write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/unused" \
    "reproducible = true" "virtual_shards = 8" "max_steps = 200"
  sed -i 's/^batch = 48$/batch = 64/; s/^epochs = 2$/epochs = 4/' "$WORK/job.ini"
  # a dropout layer after the first dense one: masks keyed by dataset row
  awk '/^\[layer\]/ { if (++seen == 2) print "[layer]\ntype = dropout\nrate = 0.3" } { print }' \
    "$WORK/job.ini" > "$WORK/tmp.ini" && mv "$WORK/tmp.ini" "$WORK/job.ini"
  for n in 1 2 4 8; do run "np$n" "$n" "$WORK/job.ini"; done
  grep -q "8 micro-batches of 8 rows per step, 1 on each rank" "$WORK/np8.log" \
    || fail "np8 did not split the batch as expected"
  same_runs np1 np2 np4 np8
  # dense weight gradients are computed once per step, as the rank's subtree of the
  # micro-batches' sums; the plain way (each micro-batch's carried) must give the same bits
  grep -q "computed once per step" "$WORK/np1.log" || fail "np1 did not defer weight gradients"
  MPINET_REPRO_PLAIN=1 run plain2 2 "$WORK/job.ini"
  ! grep -q "computed once per step" "$WORK/plain2.log" || fail "the hook was ignored"
  same_runs np1 plain2
  # the first 100 steps at 4 ranks, the rest at 2
  run part4 4 "$WORK/job.ini" --set train.max_steps=100
  run_mpi 2 train --resume "$WORK/part4" --set train.max_steps=200 > "$WORK/part4.log" 2>&1 \
    || fail "resume at 2 ranks failed"
  grep -q "resuming from .*ckpt-00000100.h5 at step 100 (written by 4 ranks)" "$WORK/part4.log" \
    || fail "did not resume at step 100"
  got=$(sha_of "$WORK/part4.log")
  [ "$got" = "$(sha_of "$WORK/np1.log")" ] || fail "4 ranks then 2 ranks: sha256 $got differs"
  "$TEST_TOOLS/compare_params" "$WORK/np1/ckpt-00000200.h5" "$WORK/part4/ckpt-00000200.h5" --exact
  h5diff "$WORK/np1/ckpt-00000200.h5" "$WORK/part4/ckpt-00000200.h5" /optimizer /optimizer \
    || fail "optimizer state differs after the resume at another world size"
  echo "ok: saved at 4 ranks, resumed at 2 = uninterrupted 1 rank (sha256 $got)"
  ! grep -q "warning" "$WORK/part4.log" || fail "a warning on a resume that changed nothing"
  # resuming with another V continues, with a warning that the bits now differ
  run part4v 4 "$WORK/job.ini" --set train.max_steps=100
  run_mpi 2 train --resume "$WORK/part4v" --set train.max_steps=120 --set train.virtual_shards=4 \
    > "$WORK/part4v.log" 2>&1 || fail "resume with another virtual_shards failed"
  grep -q "^mpinet: warning: .*ckpt-00000100.h5 was written with reproducible = true, virtual_shards = 8; this run has true, 4" \
    "$WORK/part4v.log" || fail "no warning about the changed virtual_shards"
  # the normal mode: equal within float reassociation (equivalence.sh), but not bit-equal
  run normal1 1 "$WORK/job.ini" --set train.reproducible=false
  run normal4 4 "$WORK/job.ini" --set train.reproducible=false
  ! grep -q "^reproducible: " "$WORK/normal4.log" || fail "reproducible = false was ignored"
  [ "$(sha_of "$WORK/normal1.log")" != "$(sha_of "$WORK/normal4.log")" ] \
    || fail "the normal mode gave the same bits at 1 and 4 ranks: this test proves nothing"
  "$TEST_TOOLS/compare_params" "$WORK/normal1/ckpt-00000200.h5" \
    "$WORK/normal4/ckpt-00000200.h5" --rtol 1e-4
  echo "ok: the normal mode differs in the last bits between 1 and 4 ranks, as expected"
  ;;
conv)
  make_blobs "$WORK/d.h5" --train 2048 --test 256 --features 64 --classes 4 --seed 5
  cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/d.h5
[train]
epochs = 2
batch = 64
max_steps = 48
lr = 0.05
momentum = 0.9
weight_decay = 1e-4
seed = 11
progress = lines
reproducible = true
virtual_shards = 4
[checkpoint]
dir = $WORK/unused
[layer]
type = reshape
shape = 1,8,8
[layer]
type = conv2d
filters = 6
size = 3
padding = same
activation = relu
[layer]
type = batchnorm
[layer]
type = maxpool
size = 2
[layer]
type = flatten
[layer]
type = dropout
rate = 0.2
[layer]
type = dense
units = 4
INI
  for n in 1 2 4; do run "cnn$n" "$n" "$WORK/job.ini"; done
  same_runs cnn1 cnn2 cnn4
  h5diff "$WORK/cnn1/ckpt-00000048.h5" "$WORK/cnn4/ckpt-00000048.h5" /state /state \
    || fail "batch-norm statistics differ"
  "$MPINET" convert synthetic --kind sequence -o "$WORK/seq.h5" --train 1024 --test 128 \
    --features 2 --steps 12 --classes 4 > /dev/null
  cat > "$WORK/lstm.ini" <<INI
[data]
path = $WORK/seq.h5
[train]
epochs = 2
batch = 32
optimizer = adam
lr = 0.01
clip_norm = 5
progress = lines
reproducible = true
virtual_shards = 4
[checkpoint]
dir = $WORK/unused
[layer]
type = lstm
units = 12
[layer]
type = dense
units = 4
INI
  for n in 1 2 4; do run "lstm$n" "$n" "$WORK/lstm.ini"; done
  same_runs lstm1 lstm2 lstm4
  ;;
*) fail "unknown variant $variant" ;;
esac
