#!/usr/bin/env bash
# supervise.sh: runs a training job and restarts it from its latest checkpoint when it dies of
# something a restart can fix, like torchrun's --max-restarts.
#
#   jobs/supervise.sh [--max-restarts N] --run-dir DIR -- mpirun -np 4 build/mpinet train job.ini
#
# The first launch adds `--set checkpoint.dir=DIR` to the command (or `--resume DIR` if DIR
# already holds a checkpoint); every restart adds `--resume DIR`. Restarted: a killed or
# crashed rank (exit status >= 128), the watchdog (3), a stop signal after its checkpoint (75).
# Not restarted, since the same input would fail the same way: 1 (bad config, data or
# checkpoint: the one-line error says which) and 2 (usage). At most N restarts (default 3).
set -uo pipefail
max=3
dir=""
while [ $# -gt 0 ]; do
  case $1 in
  --max-restarts) max=$2; shift 2 ;;
  --run-dir) dir=$2; shift 2 ;;
  --) shift; break ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "supervise: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$dir" ] || [ $# -eq 0 ]; then
  echo "supervise: usage: supervise.sh [--max-restarts N] --run-dir DIR -- COMMAND..." >&2
  exit 2
fi
attempt=0
while :; do
  if [ -e "$dir/latest" ]; then extra=(--resume "$dir"); else extra=(--set "checkpoint.dir=$dir"); fi
  "$@" "${extra[@]}"
  rc=$?
  case $rc in
  0) echo "supervise: done after $attempt restart(s)"; exit 0 ;;
  1 | 2) echo "supervise: exit status $rc: an error a restart cannot fix; giving up" >&2; exit "$rc" ;;
  esac
  if [ "$attempt" -ge "$max" ]; then
    echo "supervise: exit status $rc and $max restart(s) used; giving up" >&2
    exit "$rc"
  fi
  attempt=$((attempt + 1))
  echo "supervise: exit status $rc; restart $attempt of $max from $(cat "$dir/latest" 2>/dev/null || echo 'the start')" >&2
done
