#!/usr/bin/env bash
# Checkpoints under attack (tests/checkpoint_faults.sh CASE):
#   corrupt-latest  the newest checkpoint is truncated: --resume warns naming both files, falls
#                   back to the previous one, and still ends bit-identical to the straight run.
#   disk-full       the run directory is a 160 KiB tmpfs: the checkpoint that does not fit is
#                   reported in one line within seconds, and the previous checkpoint, `latest`
#                   and no stray .tmp remain (needs root for the mount; skipped otherwise).
#   supervisor      jobs/supervise.sh restarts a job whose rank was killed with kill -9 and it
#                   ends bit-identical to the straight run; it does not restart a bad config.
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
case=${1:?case}
make_blobs "$WORK/d.h5" --train 2400 --test 200 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/unused"
sed -i 's/^epochs = 2$/epochs = 4/' "$WORK/job.ini"
final=ckpt-00000200.h5 # 4 epochs x 50 steps
straight() { run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/straight" > /dev/null; }

case $case in
corrupt-latest)
  run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/run" --set train.max_steps=100 > /dev/null
  size=$(stat -c %s "$WORK/run/ckpt-00000100.h5")
  head -c $((size / 2)) "$WORK/run/ckpt-00000100.h5" > "$WORK/half" && mv "$WORK/half" "$WORK/run/ckpt-00000100.h5"
  run_mpi 2 train --resume "$WORK/run" --set train.max_steps=0 > "$WORK/resume.log" 2> "$WORK/resume.err"
  cat "$WORK/resume.err"
  grep -q "warning: $WORK/run/ckpt-00000100.h5: .*resuming from the previous checkpoint $WORK/run/ckpt-00000050.h5" \
    "$WORK/resume.err" || fail "no warning naming both files"
  straight
  "$TEST_TOOLS/compare_params" "$WORK/straight/$final" "$WORK/run/$final" --exact
  ;;
disk-full)
  if [ "$(id -u)" != 0 ]; then echo "SKIP: mounting a small tmpfs needs root"; exit 77; fi
  mkdir -p "$WORK/tiny"
  mount -t tmpfs -o size=160k tmpfs "$WORK/tiny" || { echo "SKIP: cannot mount tmpfs here"; exit 77; }
  trap 'umount "$WORK/tiny" 2>/dev/null; rm -rf "$WORK"' EXIT
  expect_error 20 "checkpoint at step [0-9]+ \(earlier checkpoints are intact\): .*(disk full|fsync|write)" \
    run_mpi 2 train "$WORK/job.ini" --set checkpoint.dir="$WORK/tiny/run" --set checkpoint.keep=10
  ls -la "$WORK/tiny/run"
  latest=$(cat "$WORK/tiny/run/latest") || fail "latest is gone"
  "$MPINET" info "$WORK/tiny/run/$latest" > /dev/null || fail "the checkpoint latest names is unreadable"
  ! ls "$WORK/tiny/run"/*.tmp 2>/dev/null || fail "a .tmp file was left behind"
  echo "ok: $latest intact after the failed write"
  ;;
supervisor)
  # a bad config is not restarted
  printf '[data]\npath = %s\n[train]\nlerning_rate = 1\n[layer]\ntype = dense\nunits = 4\n' \
    "$WORK/d.h5" > "$WORK/bad.ini"
  rc=0
  "$root/jobs/supervise.sh" --run-dir "$WORK/bad" -- timeout 60 mpirun "${MPIRUN_FLAGS[@]}" -np 2 \
    "$MPINET" train "$WORK/bad.ini" > "$WORK/bad.log" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] && grep -q "cannot fix" "$WORK/bad.log" || fail "a bad config was restarted (rc $rc)"
  # a killed rank is restarted from the last checkpoint
  sed -i 's/^units = 32$/units = 512/; s/^epochs = 4$/epochs = 8/' "$WORK/job.ini"
  final=ckpt-00000400.h5
  "$root/jobs/supervise.sh" --max-restarts 2 --run-dir "$WORK/run" -- \
    mpirun "${MPIRUN_FLAGS[@]}" -np 2 "$MPINET" train "$WORK/job.ini" > "$WORK/sup.log" 2>&1 &
  sup=$!
  for _ in $(seq 600); do [ -s "$WORK/run/latest" ] && break; sleep 0.1; done
  victim=$(pgrep -f "$MPINET train $WORK/job.ini" | tail -1)
  kill -9 "$victim"
  rc=0; wait "$sup" || rc=$?
  grep supervise "$WORK/sup.log"
  [ "$rc" -eq 0 ] || fail "the supervised job failed (rc $rc)"
  grep -q "restart 1 of 2" "$WORK/sup.log" || fail "no restart happened"
  straight
  "$TEST_TOOLS/compare_params" "$WORK/straight/$final" "$WORK/run/$final" --exact
  ;;
*) fail "unknown case $case" ;;
esac
