#!/usr/bin/env bash
# N ranks vs 1 rank: 50 steps of the same job give parameters (and batch-norm statistics)
# equal within 1e-5 relative: the global batch is the same, only the summation order of the
# gradients differs. Variants:
#   plain     the MLP
#   dropout   with a dropout layer: masks are keyed by dataset row, so N ranks draw the
#             masks 1 rank draws
#   syncbn    with batch norm, sync = true: statistics over the global batch
#   bn-local  with batch norm, sync = false: per-rank statistics, which must NOT match 1 rank
#             (shows that the syncbn variant tests something)
#   uneven    global batch 128, which N = 3, 5, 6, 7 do not divide (ranks take 42 or 43 rows,
#             and so on), with SyncBN and dropout
source "$(dirname "$0")/lib.sh"
N=${1:?world size}
variant=${2:-plain}
make_blobs "$WORK/d.h5" --train 2400 --test 200 --features 16 --classes 4
extra=""
case $variant in
plain) ;;
dropout) extra="[layer]\ntype = dropout\nrate = 0.3\n" ;;
syncbn) extra="[layer]\ntype = batchnorm\nsync = true\n" ;;
bn-local) extra="[layer]\ntype = batchnorm\nsync = false\n" ;;
uneven) extra="[layer]\ntype = batchnorm\nsync = true\n[layer]\ntype = dropout\nrate = 0.3\n" ;;
*) fail "unknown variant $variant" ;;
esac
for n in 1 "$N"; do
  write_mlp_config "$WORK/job$n.ini" "$WORK/d.h5" "$WORK/run$n" "max_steps = 50"
  # insert the variant's layer after the first dense layer (before the second [layer])
  awk -v extra="$extra" '/^\[layer\]/ { seen++; if (seen == 2) printf "%s", extra } { print }' \
    "$WORK/job$n.ini" > "$WORK/tmp.ini" && mv "$WORK/tmp.ini" "$WORK/job$n.ini"
  [ "$variant" = uneven ] && sed -i 's/^batch = 48$/batch = 128/; s/^epochs = 2$/epochs = 3/' "$WORK/job$n.ini"
  run_mpi "$n" train "$WORK/job$n.ini" > "$WORK/log$n.txt"
  if [ "$n" -gt 1 ]; then
    grep -q "replicas identical on all $n ranks" "$WORK/log$n.txt" || fail "no replica check"
  fi
done
if [ "$variant" = uneven ]; then
  grep -q "batch 128 global ($((128 / N)) or $((128 / N + 1)) per rank)" "$WORK/log$N.txt" \
    || fail "no uneven split at N=$N: $(grep '^batch' "$WORK/log$N.txt")"
fi
rc=0
"$TEST_TOOLS/compare_params" "$WORK/run1/ckpt-00000050.h5" "$WORK/run$N/ckpt-00000050.h5" \
  --rtol 1e-5 || rc=$?
if [ "$variant" = bn-local ]; then
  [ "$rc" -eq 1 ] || fail "per-rank batch norm matched the 1-rank run: the syncbn test proves nothing"
  echo "as expected, per-rank batch norm differs from the 1-rank run"
else
  [ "$rc" -eq 0 ] || fail "N=$N differs from N=1"
fi
