#!/usr/bin/env bash
# Real faults on real processes (tests/faults.sh CASE N):
#   term-one-rank  SIGTERM to ONE rank only: every rank stops after the same step, writes a
#                  checkpoint and exits 75; --resume then ends bit-identical to a run that was
#                  never interrupted.
#   usr1-mpirun    SIGUSR1 to mpirun (which forwards it): the same, exit 75.
#   kill9          kill -9 of one rank: mpirun ends non-zero within 15 s; restarting from the
#                  last checkpoint ends bit-identical to the uninterrupted run.
#   sigstop        SIGSTOP of one rank: the peers' watchdog (3 s here) ends the job within
#                  3 + 5 s with a line naming the phase; no process is left behind.
#   desync         the last rank consumes one batch more than its peers (MPINET_FAULT hook):
#                  the per-step fingerprint stops every rank at that step with one line
#                  naming the disagreeing rank, before any collective can deadlock.
#   nan-grad       a NaN in rank 1's gradient with a finite loss: every rank stops at that
#                  step naming rank 1 and the layer; with on_nonfinite = skip every rank
#                  skips it and the replicas stay identical.
#   desync-repro   the same in reproducible mode (the records ride through the tree)
#   nan-grad-repro the same in reproducible mode (the NaN enters the first micro-batch's
#                  bias gradient and must survive the summation tree to the scan).
source "$(dirname "$0")/lib.sh"
case=${1:?case}
N=${2:-2}
make_blobs "$WORK/d.h5" --train 4800 --test 200 --features 16 --classes 4
job() { # job NAME: a config whose steps take a few ms, 100 steps per epoch
  write_mlp_config "$WORK/$1.ini" "$WORK/d.h5" "$WORK/$1"
  sed -i 's/^epochs = 2$/epochs = 12/; s/^units = 32$/units = 512/; s/^units = 24$/units = 256/' "$WORK/$1.ini"
  if [ -n "${REPRO:-}" ]; then sed -i 's/^seed = 7$/seed = 7\nreproducible = true/' "$WORK/$1.ini"; fi
}
# start NAME ARGS...: launches mpirun in the background; sets PID
start() {
  local name=$1; shift
  mpirun "${MPIRUN_FLAGS[@]}" -np "$N" "$MPINET" train "$WORK/$name.ini" "$@" \
    > "$WORK/$name.log" 2> "$WORK/$name.err" &
  PID=$!
}
# wait_for FILE: until FILE exists (training has reached an epoch end), at most 60 s
wait_for() {
  for _ in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.1; done
  fail "timed out waiting for $1"
}
rank_pid() { pgrep -P "$PID" -f "$MPINET" | sed -n "${1}p"; }
# finish: waits for mpirun, at most 15 s after the fault; sets RC and TOOK
finish() {
  local t0=$1
  for _ in $(seq 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then kill -9 "$PID"; fail "mpirun still running 15 s after the fault"; fi
  RC=0; wait "$PID" || RC=$?
  TOOK=$(echo "$(date +%s.%N) - $t0" | bc)
  echo "mpirun exited $RC, ${TOOK}s after the fault"
}
# resume_matches_straight: continues the interrupted run to its end, then checks it against a
# run that was never interrupted, bit for bit
resume_matches_straight() {
  run_mpi "$N" train --resume "$WORK/cut" > "$WORK/resume.log"
  job straight
  run_mpi "$N" train "$WORK/straight.ini" > /dev/null
  "$TEST_TOOLS/compare_params" "$WORK/straight/$final" "$WORK/cut/$final" --exact
}
final=ckpt-00001200.h5 # 12 epochs x 100 steps
# stopped_by_fault FAULT PATTERN: the job run with MPINET_FAULT=FAULT must end non-zero within
# 15 s with exactly one error line, matching PATTERN (grep -E), and leave the epoch-1
# checkpoint as `latest`, loadable
stopped_by_fault() {
  job cut
  local t0; t0=$(date +%s.%N)
  MPINET_FAULT=$1 start cut
  finish "$t0"
  grep mpinet "$WORK/cut.err" || true
  [ "$RC" -ne 0 ] || fail "mpirun exited 0"
  [ "$(grep -c '^mpinet: error:' "$WORK/cut.err")" -eq 1 ] || fail "expected exactly one error line"
  grep -Eq "$2" "$WORK/cut.err" || fail "no error line matching /$2/"
  if [ -n "${REPRO:-}" ]; then grep -q "^reproducible: " "$WORK/cut.log" || fail "not reproducible"; fi
  [ "$(cat "$WORK/cut/latest")" = ckpt-00000100.h5 ] || fail "latest moved"
  "$MPINET" info "$WORK/cut/ckpt-00000100.h5" > /dev/null || fail "the last checkpoint does not load"
}

case $case in
term-one-rank | usr1-mpirun)
  job cut
  start cut
  wait_for "$WORK/cut/metrics.jsonl"
  t0=$(date +%s.%N)
  if [ "$case" = term-one-rank ]; then kill -TERM "$(rank_pid 2)"; else kill -USR1 "$PID"; fi
  finish "$t0"
  cat "$WORK/cut.log" "$WORK/cut.err"
  [ "$RC" -eq 75 ] || fail "exit status $RC, expected 75"
  grep -q "stopped by a signal after step" "$WORK/cut.log" || fail "no stop message"
  stopped=$(grep -Eo 'after step [0-9]+' "$WORK/cut.log" | awk '{print $3}')
  [ "$(cat "$WORK/cut/latest")" = "ckpt-$(printf %08d "$stopped").h5" ] || fail "latest is not the stop step"
  resume_matches_straight
  ;;
kill9)
  job cut
  start cut --set checkpoint.keep=100
  wait_for "$WORK/cut/latest"
  sleep 0.3
  t0=$(date +%s.%N)
  kill -9 "$(rank_pid 2)"
  finish "$t0"
  [ "$RC" -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
  echo "restarting from $(cat "$WORK/cut/latest")"
  resume_matches_straight
  ;;
sigstop)
  job cut
  start cut --set train.watchdog_seconds=3
  wait_for "$WORK/cut/metrics.jsonl"
  victim=$(rank_pid 2)
  t0=$(date +%s.%N)
  kill -STOP "$victim"
  finish "$t0"
  cat "$WORK/cut.err" | grep mpinet || true
  [ "$RC" -ne 0 ] || fail "mpirun exited 0"
  (( $(echo "$TOOK < 8" | bc) )) || fail "took ${TOOK}s, more than the watchdog's 3 s + 5 s"
  grep -Eq "^mpinet: error: rank [0-9]+: no progress for 3 s in (gradient allreduce|backward|forward|data loading|optimizer|evaluation)" \
    "$WORK/cut.err" || fail "no watchdog line naming the phase"
  sleep 1 # dead, or a zombie waiting for a reaper (containers without an init): not stopped
  state=$(ps -o stat= -p "$victim" || true)
  case $state in "" | Z*) ;; *) kill -9 "$victim"; fail "the stopped rank was left behind ($state)" ;; esac
  ;;
desync | desync-repro)
  [ "$case" = desync ] || REPRO=1
  stopped_by_fault "skip-batch:$((N - 1)):150" \
    "^mpinet: error: ranks out of step at the gradient allreduce of step 150: 1 rank\(s\) disagree with rank 0 \(rank $((N - 1)): step 151, 1050 steps left, layout [0-9a-f]+; rank 0: step 150, 1051 steps left"
  ;;
nan-grad | nan-grad-repro)
  [ "$case" = nan-grad ] || REPRO=1
  stopped_by_fault nan-grad:1:150 \
    "^mpinet: error: non-finite gradient at step 150 \(epoch 2\) on rank 1 \(first one in the parameters of layer 00_dense\)"
  export MPINET_FAULT=nan-grad:1:150
  job skip
  run_mpi "$N" train "$WORK/skip.ini" --set train.on_nonfinite=skip --set train.epochs=2 \
    > "$WORK/skip.log" 2> "$WORK/skip.err"
  unset MPINET_FAULT
  cat "$WORK/skip.err"
  [ "$(grep -c 'non-finite gradient at step 150 (epoch 2) on rank 1 .*: step skipped on every rank' "$WORK/skip.err")" -eq 1 ] \
    || fail "expected one skipped step"
  grep -q "replicas identical on all $N ranks" "$WORK/skip.log" || fail "replicas differ"
  grep -q '"skipped_steps": 1' <(tail -1 "$WORK/skip/metrics.jsonl") || fail "metrics lack the count"
  if [ -n "${REPRO:-}" ]; then grep -q "^reproducible: " "$WORK/skip.log" || fail "not reproducible"; fi
  ;;
*) fail "unknown case $case" ;;
esac
