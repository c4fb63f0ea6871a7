#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine to a trained Fashion-MNIST model.
# Installs what is missing, builds, converts Fashion-MNIST into data/fashion-mnist.h5 and
# trains jobs/fashion-mlp.ini on NP ranks (default 2), then draws its training curves
# (jobs/plot.sh: RUN_DIR/curves.png). Extra arguments go to `mpinet train`, e.g.
#   jobs/quickstart.sh --set train.epochs=3
set -euo pipefail
cd "$(dirname "$0")/.."
jobs/setup.sh

jobs/fashion-data.sh

run_dir=runs/fashion-mlp-$(date +%Y%m%d-%H%M%S)
flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mpirun "${flags[@]}" -np "${NP:-2}" build/mpinet train jobs/fashion-mlp.ini \
  --set checkpoint.dir="$run_dir" "$@"
jobs/plot.sh "$run_dir" > /dev/null
echo "quickstart: checkpoints, metrics.jsonl and the training curves (curves.png) are in $run_dir"
