#!/usr/bin/env bash
# buckets.sh: does the fixed bucket rule of 3+ ranks (mpi/sync_setup.c: one bucket up to 4 MB
# of gradients, else 4 MB buckets overlapped with backward) pick well at 16 to 256 ranks?
#
#   jobs/scaling/buckets.sh        (needs build/mpinet, SimGrid's smpicc and smpirun)
#
# 1. Each model's backward, layer by layer, measured here: 1 rank, $BATCH_PER_RANK (128) rows,
#    the median of each layer's backward over steps 10-40 of a timeline (train.timeline_steps).
# 2. What a blocking MPI_Allreduce of each bucket size costs at $RANKS ("16 64 256") ranks on
#    each platform of jobs/scaling/platforms, simulated (bucket_probe.c, smpi.sh's settings).
# 3. The step's exposed communication for each choice, from 1 and 2: no overlap (the whole
#    buffer after backward), or buckets of 0.25, 1, 4 or 16 MB posted as backward
#    completes them (the buffer holds the last layer first; a bucket is ready when the layer
#    holding its last float is done; the last one waits for the end of backward) and summed
#    one after another: a bucket starts when it is ready and the one before it is done.
# Writes $OUT (runs/buckets)/buckets.json and prints a table. What it leaves out: overlapped
# buckets are MPI_Iallreduce, whose algorithms (Open MPI's libnbc) are not the blocking ones
# timed here and progress only when the rank calls MPI; the bandwidth backward and the sums
# take from each other; readiness inside a layer (backward reports it in 4 blocks).
set -euo pipefail
cd "$(dirname "$0")/../.."
RANKS=${RANKS:-16 64 256}
BATCH_PER_RANK=${BATCH_PER_RANK:-128}
MODELS=${MODELS:-jobs/bench/mlp.ini jobs/bench/wide-mlp.ini jobs/bench/cnn.ini}
PLATFORMS=${PLATFORMS:-10gbe 25gbe ib-hdr}
OUT=${OUT:-runs/buckets}
source jobs/scaling/smpi.sh
# shellcheck source=/dev/null
source jobs/scaling/platforms/calibration.txt
export OPENBLAS_NUM_THREADS=1
[ -x build/mpinet ] || jobs/setup.sh > /dev/null
jobs/fashion-data.sh > /dev/null
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--bind-to none)
[ "$(id -u)" = 0 ] && flags+=(--allow-run-as-root)
smpicc -O2 jobs/scaling/bucket_probe.c -o "$work/probe"
sim_hosts "$work/hosts"

for cfg in $MODELS; do
  m=$(basename "$cfg" .ini)
  mpirun "${flags[@]}" -np 1 build/mpinet train "$cfg" --set checkpoint.dir="$work/$m" \
    --set train.batch="$BATCH_PER_RANK" --set train.max_steps=42 --set train.timeline_steps=41 \
    --set checkpoint.every_epochs=0 > "$work/$m.log"
done
for p in $PLATFORMS; do
  sim_platform "jobs/scaling/platforms/$p.xml" "$work/$p.xml"
  for n in $RANKS; do
    sizes=$(/usr/bin/python3 - "$work" $MODELS <<'PY'
import re, sys, os
sizes = set()
for cfg in sys.argv[2:]:
    log = open(os.path.join(sys.argv[1], os.path.basename(cfg)[:-4] + ".log")).read()
    n = int(re.search(r"model: (\d+) parameters", log).group(1))
    sizes.add(n)
    for b in (1 << 16, 1 << 18, 1 << 20, 1 << 22):
        if b < n: sizes.update({b} | ({n % b} if n % b else set()))
print(" ".join(str(s) for s in sorted(sizes)))
PY
)
    # shellcheck disable=SC2086
    timeout 3600 smpirun -np "$n" -platform "$work/$p.xml" -hostfile "$work/hosts" \
      --cfg=smpi/coll-selector:ompi --cfg=smpi/host-speed:"$CORE_SPEED" \
      --cfg=smpi/bw-factor:0:1 --cfg=smpi/lat-factor:0:1 --cfg=smpi/shared-malloc:local \
      --log=root.thresh:warning "$work/probe" $sizes > "$work/probe-$p-$n"
  done
done

/usr/bin/python3 - "$work" "$OUT/buckets.json" "$RANKS" "$PLATFORMS" $MODELS <<'PY'
import json, os, re, statistics, sys
work, out, ranks, platforms, cfgs = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), sys.argv[5:]
CAND = [("no overlap", 0), ("0.25 MB", 1 << 16), ("1 MB", 1 << 18), ("4 MB", 1 << 20),
        ("16 MB", 1 << 22)]
def rule(n):  # mpi/sync_setup.c at 3+ ranks
    return "no overlap" if n <= 1 << 20 else "4 MB"
models, results = {}, []
for cfg in cfgs:
    m = os.path.basename(cfg)[:-4]
    log = open(os.path.join(work, m + ".log")).read()
    n = int(re.search(r"model: (\d+) parameters", log).group(1))
    params = [int(x) for x in re.findall(r"^\s+\d\d \S+.*?(\d+) params$", log, re.M)]
    ev = json.load(open(os.path.join(work, m, "timeline.json")))
    ev = ev["traceEvents"] if isinstance(ev, dict) else ev
    per = {}
    for e in ev:
        if e.get("ph") == "X" and e["name"].endswith(" backward") and e["name"][:2].isdigit() \
           and e["args"]["step"] >= 10:
            per.setdefault(int(e["name"][:2]), []).append(e["dur"] / 1e3)
    bwd = [statistics.median(per[i]) for i in range(len(params))]
    models[m] = {"params": n, "layer_params": params, "layer_backward_ms": bwd}
for p in platforms:
    for r in ranks:
        T = {}
        for line in open(os.path.join(work, f"probe-{p}-{r}")):
            k, v = line.split()
            T[int(k)] = float(v)
        for m, d in models.items():
            n, params, bwd = d["params"], d["layer_params"], d["layer_backward_ms"]
            # the buffer holds the last layer first; backward runs last layer first
            ends, t, off = [], 0.0, 0
            for i in reversed(range(len(params))):
                t += bwd[i]; off += params[i]; ends.append((off, t))
            total_bwd = t
            row = {"platform": p, "ranks": int(r), "model": m, "params": n,
                   "backward_ms": round(total_bwd, 3), "exposed_ms": {}}
            for name, b in CAND:
                if name == "no overlap" or b >= n:
                    exposed = T[n]
                    if name != "no overlap": continue
                else:
                    done, at = 0.0, 0
                    while at < n:
                        hi = min(at + b, n)
                        ready = total_bwd if hi == n else next(e for o, e in ends if o >= hi)
                        done = max(ready, done) + T[hi - at]
                        at = hi
                    exposed = done - total_bwd
                row["exposed_ms"][name] = round(exposed, 3)
            best = min(row["exposed_ms"], key=row["exposed_ms"].get)
            row["best"], row["rule"] = best, rule(n)
            row["rule_minus_best_ms"] = round(row["exposed_ms"][rule(n)] - row["exposed_ms"][best], 3)
            results.append(row)
json.dump({"models": models, "results": results}, open(out, "w"), indent=1)
print("| platform | ranks | model | backward ms | exposed ms: " + " / ".join(c for c, _ in CAND) +
      " | best | rule | rule's extra ms |")
print("|---|---|---|---|---|---|---|---|")
for x in results:
    e = " / ".join(str(x["exposed_ms"].get(c, "-")) for c, _ in CAND)
    print(f"| {x['platform']} | {x['ranks']} | {x['model']} | {x['backward_ms']} | {e} | {x['best']} | "
          f"{x['rule']} | {x['rule_minus_best_ms']} |")
PY
echo "buckets.sh: wrote $OUT/buckets.json"
