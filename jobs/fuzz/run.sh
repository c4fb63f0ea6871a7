#!/usr/bin/env bash
# run.sh [SECONDS]: fuzzes the config parser, the idx reader and the HDF5 dataset validation
# with libFuzzer (clang, with ASan + UBSan), SECONDS each (default 60), starting from
# tests/fuzz/seeds/<target>. An input that crashes a target is kept in
# tests/fuzz/regressions/<target>/, which CTest replays in every run (fuzz_regressions_*):
# fix the bug, keep the file. Prints one JSON line per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
jobs/setup.sh > /dev/null
if ! command -v clang > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a > /dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    clang libclang-rt-14-dev > /dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sources=(src/error.c src/config.c src/fileutil.c src/h5util.c src/dataset.c src/layer.c
         src/activation.c src/rng.c datasets/convert_idx.c datasets/h5_writer.c)
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -D_GNU_SOURCE -Isrc -Idatasets $(pkg-config --cflags hdf5-openmpi inih openblas)
       $(mpicc --showme:compile))
libs=($(pkg-config --libs hdf5-openmpi inih openblas) $(mpicc --showme:link) -lz -lm -lpthread)
for target in config idx dataset; do
  clang "${flags[@]}" -o "$work/fuzz_$target" "tests/fuzz/fuzz_$target.c" "${sources[@]}" \
    src/layers/*.c src/net.c src/loss.c "${libs[@]}" 2> "$work/build_$target.log" \
    || { cat "$work/build_$target.log"; exit 1; }
  mkdir -p "$work/corpus_$target" "tests/fuzz/regressions/$target"
  cp tests/fuzz/seeds/$target/* "$work/corpus_$target/"
  # libhdf5 leaks small blocks when it refuses a malformed file: not ours to fix, so the
  # dataset target runs without leak detection (the other two keep it)
  # A dataset header may claim a huge array: mpinet then asks for that much memory and reports
  # an allocation failure; the fuzzer must let the allocation fail instead of calling it OOM.
  leaks=1 rss=2048
  if [ "$target" = dataset ]; then leaks=0 rss=0; fi
  rc=0
  ASAN_OPTIONS=allocator_may_return_null=1 \
  "$work/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=$rss -malloc_limit_mb=65536 \
    -timeout=10 -detect_leaks=$leaks \
    -artifact_prefix="tests/fuzz/regressions/$target/" "$work/corpus_$target" \
    > "$work/fuzz_$target.log" 2>&1 || rc=$?
  runs=$(grep -Eo 'Done [0-9]+ runs' "$work/fuzz_$target.log" | awk '{print $2}' || true)
  where=$(grep -m1 -Eo 'in [A-Za-z_0-9]+ .*(libhdf5|src/|datasets/)[^ ]*' "$work/fuzz_$target.log" || true)
  echo "{\"target\": \"$target\", \"seconds\": $seconds, \"runs\": ${runs:-0}, \"crashed\": $([ $rc -eq 0 ] && echo false || echo true), \"where\": \"${where//\"/}\"}"
  [ "$rc" -eq 0 ] || tail -30 "$work/fuzz_$target.log" >&2
done
