#!/usr/bin/env bash
# [train] timeline_steps: RUN_DIR/timeline.json must be valid JSON in Chrome's trace format
# with, for every rank, every recorded step's data wait, forward, backward (each layer
# inside its phase), allreduce wait, optimizer and gradient buckets, plus the evaluation and
# the checkpoint write; and steps outside the window must not be there.
source "$(dirname "$0")/lib.sh"
N=${1:-2}
make_blobs "$WORK/d.h5" --train 960 --test 96 --features 16 --classes 4
write_mlp_config "$WORK/job.ini" "$WORK/d.h5" "$WORK/run"
run_mpi "$N" train "$WORK/job.ini" --set train.timeline_steps=6 --set train.epochs=1 \
  --set train.bucket_mb=0.004 --set train.allreduce=mpi > "$WORK/log.txt"
grep -q "timeline: $WORK/run/timeline.json" "$WORK/log.txt" || fail "no timeline line"
/usr/bin/python3 - "$WORK/run/timeline.json" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    trace = json.load(f)  # raises on invalid JSON
events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"}
assert names == {"process_name"}, names
procs = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
assert procs == {r: f"rank {r}" for r in range(n)}, procs
layers = ["00_dense", "01_dense", "02_dense"]
phases = ["data wait", "forward", "backward", "allreduce wait", "optimizer"]
for r in range(n):
    mine = [e for e in events if e["pid"] == r]
    assert all(e["dur"] >= 0 for e in mine), "negative duration"
    steps = sorted({e["args"]["step"] for e in mine if e["name"] == "forward"})
    assert steps == [1, 2, 3, 4, 5, 6], f"rank {r}: steps {steps}"
    for s in steps:
        at = {e["name"]: e for e in mine if e["args"]["step"] == s}
        for p in phases:
            assert p in at, f"rank {r} step {s}: no {p}"
        for l in layers:
            for p in ("forward", "backward"):
                e, outer = at[f"{l} {p}"], at[p]
                assert outer["ts"] - 1 <= e["ts"] and e["ts"] + e["dur"] <= outer["ts"] + outer["dur"] + 1, \
                    f"rank {r} step {s}: {l} {p} outside its phase"
        buckets = [e for e in mine if e["args"]["step"] == s and e["name"].startswith("allreduce bucket")]
        if n > 1:
            assert len(buckets) >= 2 and all(e["tid"] == 1 for e in buckets), f"step {s}: buckets {len(buckets)}"
            # a bucket is posted before backward ends (overlap) and done by the end of the wait
            assert min(e["ts"] for e in buckets) < at["backward"]["ts"] + at["backward"]["dur"]
            assert max(e["ts"] + e["dur"] for e in buckets) <= at["allreduce wait"]["ts"] + at["allreduce wait"]["dur"] + 1
    assert any(e["name"] == "evaluation" for e in mine), f"rank {r}: no evaluation"
    assert any(e["name"] == "checkpoint write" for e in mine), f"rank {r}: no checkpoint write"
print(f"timeline: {len(events)} events, {n} ranks, steps 1-6 complete and nested")
PY
