# lib.sh: shared helpers for mpinet's shell tests (sourced). CTest sets MPINET and
# TEST_TOOLS (the directory with compare_params, make_bad_data, ...).
set -euo pipefail
: "${MPINET:?set MPINET to the mpinet binary}"
: "${TEST_TOOLS:?set TEST_TOOLS to the test helper directory}"
export OPENBLAS_NUM_THREADS=1
MPIRUN_FLAGS=(--oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && MPIRUN_FLAGS+=(--allow-run-as-root)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mpinet-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# need_h5py: the tests that write users' kinds of files use h5py (jobs/setup.sh installs it).
need_h5py() {
  /usr/bin/python3 -c 'import h5py' 2> /dev/null \
    || fail "python3-h5py is not installed (jobs/setup.sh installs it)"
}

# run_mpi N ARGS...: mpinet under mpirun with N ranks, killed if it runs past 120 s.
run_mpi() {
  local n=$1; shift
  timeout -k 5 "${MPI_TIMEOUT:-120}" mpirun "${MPIRUN_FLAGS[@]}" -np "$n" "$MPINET" "$@"
}

# sha_of LOG: the "parameters sha256" a run printed (the parameters' digest).
sha_of() { grep -o 'parameters sha256 [0-9a-f]*' "$1" | cut -d' ' -f3; }

# make_blobs OUT [args...]: a small separable classification dataset.
make_blobs() {
  local out=$1; shift
  "$MPINET" convert synthetic -o "$out" --kind blobs "$@" >/dev/null
}

# write_mlp_config OUT DATA RUN_DIR [extra lines for [train]]: a small MLP job.
write_mlp_config() {
  local out=$1 data=$2 run=$3; shift 3
  cat > "$out" <<INI
[data]
path = $data
[train]
epochs = 2
batch = 48
lr = 0.05
momentum = 0.9
weight_decay = 1e-4
schedule = cosine
warmup_epochs = 0.25
seed = 7
progress = lines
$(printf '%s\n' "$@")
[checkpoint]
dir = $run
[layer]
type = dense
units = 32
activation = tanh
[layer]
type = dense
units = 24
activation = relu
[layer]
type = dense
units = 4
INI
}

# expect_error SECONDS PATTERN CMD...: CMD must fail within SECONDS, print exactly one
# 'mpinet: error:' line matching PATTERN (grep -E), and not dump core.
expect_error() {
  local limit=$1 pattern=$2; shift 2
  local start end rc=0
  start=$(date +%s.%N)
  "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || rc=$?
  end=$(date +%s.%N)
  local took; took=$(echo "$end - $start" | bc)
  cat "$WORK/err.txt" >&2
  [ "$rc" -ne 0 ] || fail "exit status 0 for a bad input"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "timed out (hang) after ${limit}s"
  (( $(echo "$took < $limit" | bc) )) || fail "took ${took}s (limit ${limit}s)"
  local lines; lines=$(grep -c '^mpinet: error:' "$WORK/err.txt" || true)
  [ "$lines" -eq 1 ] || fail "expected exactly one 'mpinet: error:' line, got $lines"
  grep '^mpinet: error:' "$WORK/err.txt" | grep -Eq -e "$pattern" \
    || fail "the error line does not match /$pattern/"
  ! grep -qi 'core dumped\|segmentation fault' "$WORK/err.txt" || fail "crashed"
  echo "ok: failed in ${took}s with: $(grep '^mpinet: error:' "$WORK/err.txt")"
}
