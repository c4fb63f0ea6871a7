#!/usr/bin/env bash
# fashion-data.sh: Debian's Fashion-MNIST (package dataset-fashion-mnist, installed by
# jobs/setup.sh) converted once into data/fashion-mnist.h5, which the job configs and the
# benchmarks read; later calls find it there. Needs build/mpinet.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/datasets/fashion-mnist
if [ ! -f data/fashion-mnist.h5 ]; then
  mkdir -p data
  build/mpinet convert idx \
    --train-images $src/train-images-idx3-ubyte.gz --train-labels $src/train-labels-idx1-ubyte.gz \
    --test-images $src/t10k-images-idx3-ubyte.gz --test-labels $src/t10k-labels-idx1-ubyte.gz \
    --class-names "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" \
    -o data/fashion-mnist.h5
fi
