#!/usr/bin/env bash
# layering.sh [ROOT]: calls go down the floors. No file under src/ (the single-process core)
# includes mpi.h or a header of mpi/ or datasets/, and no file under datasets/ includes mpi.h
# or a header of mpi/. Each offending line is printed with its file and line number.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
headers() { (cd "$root/$1" && ls ./*.h) | sed 's|^\./||'; }
# check FLOOR ABOVE...: FLOOR's files include no header of the folders above it, nor mpi.h
check() {
  local floor=$1; shift
  local names=(mpi.h) above
  for above in "$@"; do mapfile -t -O "${#names[@]}" names < <(headers "$above"); done
  local pattern
  pattern=$(printf '%s\n' "${names[@]}" | sed 's/\./\\./g' | paste -sd'|')
  grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"](\.\./)*([a-z_]+/)*($pattern)[>\"]" \
    --include='*.c' --include='*.h' "$root/$floor" || return 0
  return 1
}
bad=0
check src mpi datasets || { echo "FAIL: src/ includes what stands on it (above)"; bad=1; }
check datasets mpi || { echo "FAIL: datasets/ includes mpi/ (above)"; bad=1; }
[ "$bad" = 0 ] && echo "ok: src/ includes nothing of mpi/ or datasets/, datasets/ nothing of mpi/"
exit "$bad"
