#!/usr/bin/env bash
# make-regression-csv.sh [ROWS] [OUT]: writes a small nonlinear regression CSV (default 4000
# rows to data/regression.csv), deterministic (awk's RNG with a fixed seed):
#   x1..x4 uniform in [-2, 2],  y = sin(x1) + 0.5 x2^2 - 0.8 x3 x4 + 0.1 noise
set -euo pipefail
rows=${1:-4000}
out=${2:-data/regression.csv}
mkdir -p "$(dirname "$out")"
awk -v rows="$rows" 'BEGIN {
  srand(12345)
  print "x1,x2,x3,x4,y"
  for (i = 0; i < rows; i++) {
    x1 = 4 * rand() - 2; x2 = 4 * rand() - 2; x3 = 4 * rand() - 2; x4 = 4 * rand() - 2
    noise = rand() + rand() + rand() - 1.5
    y = sin(x1) + 0.5 * x2 * x2 - 0.8 * x3 * x4 + 0.1 * noise
    printf "%.6f,%.6f,%.6f,%.6f,%.6f\n", x1, x2, x3, x4, y
  }
}' > "$out"
echo "wrote $out: $rows rows"
