#!/usr/bin/env bash
# No allocation in the steady state: with train.check_allocations the trainer compares the
# allocator's in-use bytes (mallinfo2) after warm-up with every later step of each epoch and
# aborts if they move. One rank, and 2 ranks summing their gradients in shared memory (no MPI
# call inside a step there; Open MPI's non-blocking collectives allocate a schedule per
# MPI_Iallreduce call, so the MPI buckets are not measured). The job covers every kind of
# layer that owns a workspace, a graph (add, concat, an output read twice), Adam and the
# prefetch thread.
source "$(dirname "$0")/lib.sh"
make_blobs "$WORK/d.h5" --train 1600 --test 100 --features 16 --classes 4
cat > "$WORK/job.ini" <<INI
[data]
path = $WORK/d.h5
[train]
epochs = 2
batch = 32
optimizer = adam
lr = 0.003
check_allocations = true
progress = lines
[checkpoint]
dir = $WORK/run
[layer]
type = reshape
shape = 1,4,4
[layer]
type = conv2d
filters = 4
size = 3
padding = same
activation = relu
[layer]
type = maxpool
[layer]
name = bn
type = batchnorm
[layer]
name = side
type = conv2d
filters = 4
size = 1
[layer]
name = sum
type = add
inputs = bn, side
[layer]
type = concat
inputs = sum, bn
[layer]
type = reshape
shape = 8,4
[layer]
type = lstm
units = 8
[layer]
type = dropout
rate = 0.2
[layer]
type = dense
units = 8
[layer]
type = maxout
pieces = 2
[layer]
type = dense
units = 4
INI
for n in 1 2; do
  rm -rf "$WORK/run"
  run_mpi "$n" train "$WORK/job.ini" | tee "$WORK/log.txt"
  [ "$(grep -c 'check_allocations: heap in use constant' "$WORK/log.txt")" -eq 2 ] \
    || fail "the heap check did not pass in both epochs at $n rank(s)"
  [ "$n" = 1 ] || grep -q "summed in shared memory" "$WORK/log.txt" || fail "not the shared-memory sum"
done
