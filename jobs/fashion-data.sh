#!/usr/bin/env bash
# fashion-data.sh: Debian's Fashion-MNIST (package dataset-fashion-mnist, installed by
# jobs/setup.sh) converted once into data/fashion-mnist.h5, which the job configs and the
# benchmarks read; later calls find it there. Needs build/mpinet. The images are stored
# plain (56 MB instead of 31 deflated): every rank of every job reads the whole split, and
# inflating it took 0.25 s of the MLP's 0.6 s from launch to first step.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/datasets/fashion-mnist
if [ ! -f data/fashion-mnist.h5 ]; then
  mkdir -p data
  build/mpinet convert idx \
    --train-images $src/train-images-idx3-ubyte.gz --train-labels $src/train-labels-idx1-ubyte.gz \
    --test-images $src/t10k-images-idx3-ubyte.gz --test-labels $src/t10k-labels-idx1-ubyte.gz \
    --class-names "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" \
    --no-compression -o data/fashion-mnist.h5
fi
