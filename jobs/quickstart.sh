#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine to a trained Fashion-MNIST model.
# Installs what is missing, builds, converts Fashion-MNIST into data/fashion-mnist.h5 and
# trains jobs/fashion-mlp.ini on NP ranks (default 2). Extra arguments go to `mpinet train`,
# e.g.  jobs/quickstart.sh --set train.epochs=3
set -euo pipefail
cd "$(dirname "$0")/.."
jobs/setup.sh

src=/usr/share/datasets/fashion-mnist
if [ ! -f data/fashion-mnist.h5 ]; then
  mkdir -p data
  build/mpinet convert idx \
    --train-images $src/train-images-idx3-ubyte.gz --train-labels $src/train-labels-idx1-ubyte.gz \
    --test-images $src/t10k-images-idx3-ubyte.gz --test-labels $src/t10k-labels-idx1-ubyte.gz \
    --class-names "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" \
    -o data/fashion-mnist.h5
fi

run_dir=runs/fashion-mlp-$(date +%Y%m%d-%H%M%S)
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mpirun "${flags[@]}" -np "${NP:-2}" build/mpinet train jobs/fashion-mlp.ini \
  --set checkpoint.dir="$run_dir" "$@"
echo "quickstart: checkpoints and metrics.jsonl are in $run_dir"
