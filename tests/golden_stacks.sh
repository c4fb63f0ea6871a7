#!/usr/bin/env bash
# The shipped jobs train the same bits as before the layer graph (issue 28): the parameters'
# sha256 after 20 steps of each jobs/*.ini and jobs/bench/*.ini at N ranks, against the
# golden values in tests/golden/stacks.txt, which say the commit and the machine they came
# from. The bits depend on the kernels that compute them (our AVX-512 GEMMs or OpenBLAS's,
# and which core OpenBLAS picked): on another machine the test is skipped (77) and says so.
#   golden_stacks.sh N            compare
#   golden_stacks.sh N --write    (re)write N's values into tests/golden/stacks.txt
source "$(dirname "$0")/lib.sh"
N=${1:?world size}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GOLDEN=$ROOT/tests/golden/stacks.txt
JOBS="fashion-mlp fashion-mlp-bn-dropout fashion-cnn fashion-lstm csv-regression bench/mlp bench/wide-mlp bench/cnn"

corename=$(/usr/bin/python3 -c 'import ctypes
l = ctypes.CDLL("libopenblas.so.0"); l.openblas_get_corename.restype = ctypes.c_char_p
print(l.openblas_get_corename().decode())')
avx512=$(grep -qw avx512vl /proc/cpuinfo && grep -qw avx512f /proc/cpuinfo && echo yes || echo no)
machine="avx512=$avx512 openblas=$corename/$(dpkg-query -W -f '${Version}' libopenblas0-pthread 2> /dev/null || echo unknown)"

src=/usr/share/datasets/fashion-mnist
[ -f $src/train-images-idx3-ubyte.gz ] || fail "no Fashion-MNIST in $src (jobs/setup.sh installs dataset-fashion-mnist)"
"$MPINET" convert idx --train-images $src/train-images-idx3-ubyte.gz \
  --train-labels $src/train-labels-idx1-ubyte.gz --test-images $src/t10k-images-idx3-ubyte.gz \
  --test-labels $src/t10k-labels-idx1-ubyte.gz --no-compression -o "$WORK/fashion.h5" > /dev/null
"$ROOT/jobs/make-regression-csv.sh" 4000 "$WORK/regression.csv" > /dev/null
"$MPINET" convert csv --input "$WORK/regression.csv" --target-column y -o "$WORK/regression.h5" > /dev/null

declare -A got
for job in $JOBS; do
  data=$WORK/fashion.h5
  [ "$job" != csv-regression ] || data=$WORK/regression.h5
  run_mpi "$N" train "$ROOT/jobs/$job.ini" --set data.path="$data" --set train.max_steps=20 \
    --set checkpoint.dir="$WORK/run-${job//\//-}" --set checkpoint.every_epochs=0 > "$WORK/out.txt" 2>&1 \
    || { cat "$WORK/out.txt"; fail "$job did not run at $N ranks"; }
  got[$job]=$(grep -o 'parameters sha256 [0-9a-f]*' "$WORK/out.txt" | cut -d' ' -f3)
  echo "np$N $job ${got[$job]}"
done

if [ "${2:-}" = --write ]; then
  {
    echo "# parameters sha256 after 20 steps of each shipped job (tests/golden_stacks.sh)"
    echo "# commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src mpi || echo ' (with uncommitted changes)'), $(date +%F)"
    echo "# machine $machine"
    grep -v '^#' "$GOLDEN" 2> /dev/null | grep -v "^np$N " || true
    for job in $JOBS; do echo "np$N $job ${got[$job]}"; done
  } > "$WORK/golden" && mv "$WORK/golden" "$GOLDEN"
  echo "wrote np$N's values to $GOLDEN"
  exit 0
fi
want_machine=$(sed -n 's/^# machine //p' "$GOLDEN")
if [ "$want_machine" != "$machine" ]; then
  echo "SKIP: the golden values come from '$want_machine', this machine is '$machine'"
  exit 77
fi
bad=0
for job in $JOBS; do
  want=$(awk -v k="np$N" -v j="$job" '$1 == k && $2 == j { print $3 }' "$GOLDEN")
  [ -n "$want" ] || fail "no golden value for $job at $N ranks in $GOLDEN"
  if [ "$want" != "${got[$job]}" ]; then
    echo "FAIL: $job at $N ranks: sha256 ${got[$job]}, golden $want" >&2
    bad=1
  fi
done
[ $bad = 0 ] || fail "the shipped jobs no longer train the same bits ($(sed -n 's/^# commit //p' "$GOLDEN"))"
echo "ok: every shipped job trains the golden bits at $N rank(s)"
