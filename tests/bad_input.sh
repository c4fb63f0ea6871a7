#!/usr/bin/env bash
# One bad input per call: the whole mpirun job must exit non-zero within 10 s with exactly
# one 'mpinet: error:' line naming the file/key and the problem.
source "$(dirname "$0")/lib.sh"
case=${1:?case}
make_blobs "$WORK/d.h5" --train 256 --test 64 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run"
case $case in
missing-config)
  expect_error 10 "$WORK/nope.ini: cannot open" run_mpi 2 train "$WORK/nope.ini" ;;
unknown-key)
  sed -i 's/^lr = 0.05/lr = 0.05\nlerning_rate = 0.1/' "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: \[train\] lerning_rate: unknown key" \
    run_mpi 2 train "$WORK/job.ini" ;;
unknown-override)
  expect_error 10 "--set train.lerning_rate: unknown key" \
    run_mpi 2 train "$WORK/job.ini" --set train.lerning_rate=1 ;;
bad-value)
  sed -i 's/^activation = relu$/activation = relux/' "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: \[layer 2\] activation: 'relux' is not one of" \
    run_mpi 2 train "$WORK/job.ini" ;;
missing-dataset)
  expect_error 10 "$WORK/none.h5: cannot open" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/none.h5" ;;
not-hdf5)
  echo "not hdf5" > "$WORK/text.h5"
  expect_error 10 "$WORK/text.h5: not an HDF5 file" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/text.h5" ;;
no-train-x)
  "$TEST_TOOLS/make_bad_data" no-train-x "$WORK/bad.h5"
  expect_error 10 "$WORK/bad.h5: no dataset /train/x" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/bad.h5" ;;
label-range)
  "$TEST_TOOLS/make_bad_data" label-range "$WORK/bad.h5"
  expect_error 10 "$WORK/bad.h5: /train/y\[32\] = 3 is outside \[0, classes = 3\)" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/bad.h5" --set layer3.units=3 ;;
row-mismatch)
  "$TEST_TOOLS/make_bad_data" row-mismatch "$WORK/bad.h5"
  expect_error 10 "$WORK/bad.h5: /train/x has 64 rows but /train/y has 63" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/bad.h5" ;;
batch-below-ranks)
  sed -i 's/^batch = 48$/batch = 2/' "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: \[train\] batch: global batch 2 is smaller than the 3 ranks" \
    run_mpi 3 train "$WORK/job.ini" ;;
wrong-output-width)
  expect_error 10 "\[layer 3\]: the last layer outputs \(5\) values per sample but the data needs 4" \
    run_mpi 2 train "$WORK/job.ini" --set layer3.units=5 ;;
unknown-layer-type)
  expect_error 10 "\[layer 2\]: unknown layer type 'dens'" \
    run_mpi 2 train "$WORK/job.ini" --set layer2.type=dens ;;
nan-loss)
  expect_error 20 "non-finite loss at step [0-9]+" \
    run_mpi 2 train "$WORK/job.ini" --set train.lr=1000 --set train.warmup_epochs=0 ;;
nan-one-rank)
  # shard mode: only rank 1 holds the row that overflows, so only it sees a NaN
  "$TEST_TOOLS/make_bad_data" huge-last-row "$WORK/huge.h5"
  expect_error 20 "non-finite loss at step [0-9]+ \(epoch [0-9]+\) on rank 1 \(first non-finite output: layer 00_dense\)" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/huge.h5" --set data.shuffle=shard \
    --set train.batch=8 --set layer3.units=3 --set layer1.activation=relu ;;
syntax)
  printf '[train]\nlr 0.1\n' >> "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: cannot parse line" run_mpi 2 train "$WORK/job.ini" ;;
unknown-section)
  printf '[trian]\nlr = 0.1\n' >> "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: unknown section \[trian\]" run_mpi 2 train "$WORK/job.ini" ;;
out-of-range)
  sed -i 's/^epochs = 2$/epochs = -1/' "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: \[train\] epochs: -1 is out of range" run_mpi 2 train "$WORK/job.ini" ;;
malformed-set)
  expect_error 10 "--set trainlr=1: expected section.key=value" \
    run_mpi 2 train "$WORK/job.ini" --set trainlr=1 ;;
two-configs)
  expect_error 10 "train: expected one CONFIG.ini" run_mpi 2 train "$WORK/job.ini" "$WORK/job.ini" ;;
kernel-too-large)
  awk '/^\[layer\]/ && !done { printf "[layer]\ntype = reshape\nshape = 1,4,4\n[layer]\ntype = conv2d\nfilters = 2\nsize = 7\n"; done = 1 } { print }' \
    "$WORK/job.ini" > "$WORK/conv.ini"
  expect_error 10 "conv.ini:[0-9]+: \[layer 2\]: conv2d layer gets input of shape \(1, 4, 4\): kernel 7x7 is larger" \
    run_mpi 2 train "$WORK/conv.ini" ;;
labels-needed)
  "$MPINET" convert synthetic --kind regression -o "$WORK/r.h5" --features 16 --classes 4 > /dev/null
  expect_error 10 "cross_entropy needs integer class labels but $WORK/r.h5: /train/y holds float targets" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/r.h5" ;;
resume-nothing)
  mkdir -p "$WORK/empty"
  expect_error 10 "$WORK/empty: no checkpoint to resume from" \
    run_mpi 2 train "$WORK/job.ini" --resume "$WORK/empty" ;;
resume-other-model)
  run_mpi 2 train "$WORK/job.ini" --set train.max_steps=2 > /dev/null
  expect_error 10 "ckpt-00000002.h5: /params/00_dense/W has shape \(32, 16\) but the model's is \(64, 16\)" \
    run_mpi 2 train "$WORK/job.ini" --resume "$WORK/run" --set layer1.units=64 ;;
eval-missing)
  expect_error 10 "$WORK/nope.h5: cannot open" run_mpi 2 eval "$WORK/nope.h5" "$WORK/d.h5" ;;
eval-not-checkpoint)
  expect_error 10 "$WORK/d.h5: not an mpinet checkpoint" run_mpi 2 eval "$WORK/d.h5" "$WORK/d.h5" ;;
info-missing)
  expect_error 10 "$WORK/nope.h5: cannot open" "$MPINET" info "$WORK/nope.h5" ;;
convert-missing)
  expect_error 10 "$WORK/none-images: cannot open" "$MPINET" convert idx \
    --train-images "$WORK/none-images" --train-labels "$WORK/x" --test-images "$WORK/x" \
    --test-labels "$WORK/x" -o "$WORK/out.h5" ;;
desync-args)
  # an MPMD launch that gives rank 1 another learning rate
  expect_error 10 "rank 1 disagrees with rank 0 on the effective config" \
    timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np 1 "$MPINET" train "$WORK/job.ini" : \
    -np 1 "$MPINET" train "$WORK/job.ini" --set train.lr=0.5 ;;
desync-data)
  # the same relative data path names different files for the two ranks (as on two nodes)
  mkdir -p "$WORK/a" "$WORK/b"
  make_blobs "$WORK/a/d.h5" --train 256 --test 64 --features 16 --classes 4
  make_blobs "$WORK/b/d.h5" --train 192 --test 64 --features 16 --classes 4
  sed -i "s|^path = .*|path = d.h5|" "$WORK/job.ini"
  expect_error 10 "rank 1 disagrees with rank 0 on the training rows \(192 vs 256\)" \
    timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np 1 -wdir "$WORK/a" "$MPINET" train "$WORK/job.ini" : \
    -np 1 -wdir "$WORK/b" "$MPINET" train "$WORK/job.ini" ;;
nan-in-data)
  "$TEST_TOOLS/make_bad_data" nan-x "$WORK/nan.h5"
  expect_error 10 "$WORK/nan.h5: /train/x has a non-finite value at row 5" \
    run_mpi 2 train "$WORK/job.ini" --set data.path="$WORK/nan.h5" --set layer3.units=3 ;;
unknown-command)
  expect_error 10 "unknown command 'trian'" run_mpi 2 trian "$WORK/job.ini" ;;
corrupt-checkpoint-eval)
  run_mpi 2 train "$WORK/job.ini" --set train.max_steps=2 > /dev/null
  cp "$WORK/run/ckpt-00000002.h5" "$WORK/cut.h5"
  truncate -s 3000 "$WORK/cut.h5"
  expect_error 10 "$WORK/cut.h5: HDF5 cannot open it \(corrupt or truncated\?\)" \
    run_mpi 2 eval "$WORK/cut.h5" "$WORK/d.h5"
  "$MPINET" info "$WORK/run/ckpt-00000002.h5" > /dev/null || fail "the intact checkpoint no longer loads" ;;
no-layers)
  sed -i '/^\[layer\]/,$d' "$WORK/job.ini"
  expect_error 10 "job.ini: no \[layer\] sections" run_mpi 2 train "$WORK/job.ini" ;;
bad-activation)
  expect_error 10 "--set layer1.activation: 'relux' is not one of: none, sigmoid, tanh" \
    run_mpi 2 train "$WORK/job.ini" --set layer1.activation=relux ;;
reshape-mismatch)
  awk '/^\[layer\]/ && !done { printf "[layer]\ntype = reshape\nshape = 3,3,3\n"; done = 1 } { print }' \
    "$WORK/job.ini" > "$WORK/rs.ini"
  expect_error 10 "rs.ini:[0-9]+: \[layer 1\]: reshape layer gets input of shape \(16\): cannot reshape it to \(3, 3, 3\)" \
    run_mpi 2 train "$WORK/rs.ini" ;;
convert-bad-kind)
  expect_error 10 "--kind nope: expected blobs, regression or sequence" \
    "$MPINET" convert synthetic --kind nope -o "$WORK/x.h5" ;;
repro-world)
  sed -i 's/^seed = 7$/seed = 7\nreproducible = true/' "$WORK/job.ini"
  expect_error 10 "--set train.grad_compression: bf16: reproducible mode sums float32 gradients" \
    run_mpi 2 train "$WORK/job.ini" --set train.grad_compression=bf16
  expect_error 10 "--set train.sync_every: 4: reproducible mode sums one global batch's gradients" \
    run_mpi 2 train "$WORK/job.ini" --set train.sync_every=4
  expect_error 10 "--set train.grad_compression: 'int8' is not one of: none, bf16, fp16" \
    run_mpi 2 train "$WORK/job.ini" --set train.grad_compression=int8
  expect_error 10 "job.ini:[0-9]+: \[train\] reproducible: with virtual_shards = 8 the job must run on a power-of-two number of ranks that divides 8 \(1, 2, 4, ...\), not on 3 \(reproducible mode gives every rank the same number of equal micro-batches" \
    run_mpi 3 train "$WORK/job.ini"
  expect_error 10 "job.ini:[0-9]+: \[train\] reproducible: batch 48 is not divisible by virtual_shards = 32" \
    run_mpi 2 train "$WORK/job.ini" --set train.virtual_shards=32
  expect_error 10 "--set train.virtual_shards: 6 is not a power of two" \
    run_mpi 2 train "$WORK/job.ini" --set train.virtual_shards=6
  expect_error 10 "job.ini:[0-9]+: \[train\] reproducible: needs \[data\] shuffle = global" \
    run_mpi 2 train "$WORK/job.ini" --set data.shuffle=shard
  expect_error 10 "job.ini:[0-9]+: \[train\] reproducible: not with threads = 2" \
    run_mpi 2 train "$WORK/job.ini" --set train.threads=2
  awk '/^\[layer\]/ { if (++seen == 2) print "[layer]\ntype = batchnorm\nsync = true" } { print }' \
    "$WORK/job.ini" > "$WORK/bn.ini"
  expect_error 10 "bn.ini:[0-9]+: \[layer 2\] sync: not with \[train\] reproducible = true" \
    run_mpi 2 train "$WORK/bn.ini" ;;
allreduce-node)
  # shared memory asked for where it cannot be: one rank per "node" (the test hook)
  expect_error 10 "--set train.allreduce: node: cannot sum in shared memory: each node holds one rank" \
    timeout -k 5 60 env MPINET_TEST_NODE_RANKS=1 mpirun "${MPIRUN_FLAGS[@]}" -np 2 "$MPINET" \
    train "$WORK/job.ini" --set train.allreduce=node ;;
repro-kernels)
  # one rank with other GEMM kernels (an MPMD launch standing in for a node with another CPU)
  sed -i 's/^seed = 7$/seed = 7\nreproducible = true/' "$WORK/job.ini"
  run_mpi 1 train "$WORK/job.ini" --set train.max_steps=1 > "$WORK/one.log"
  grep -q "^reproducible: .*OpenBLAS '[A-Za-z0-9]*'" "$WORK/one.log" || fail "no OpenBLAS core name"
  other=Haswell
  ! grep -q "OpenBLAS 'Haswell'" "$WORK/one.log" || other=Sandybridge
  rm -rf "$WORK/run"
  expect_error 10 "job.ini:[0-9]+: \[train\] reproducible: this rank's OpenBLAS uses the '[A-Za-z0-9]+' kernels but rank [01]'s differ" \
    timeout -k 5 60 mpirun "${MPIRUN_FLAGS[@]}" -np 1 "$MPINET" train "$WORK/job.ini" : \
    -np 1 -x OPENBLAS_CORETYPE=$other "$MPINET" train "$WORK/job.ini" ;;
*) fail "unknown case $case" ;;
esac
