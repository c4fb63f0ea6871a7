#!/usr/bin/env python3
"""comm_profile.py TIMELINE.json: where a run's exposed communication goes.

Reads a timeline (train.timeline_steps) of a multi-rank run and prints one JSON line: per
rank, the median of each step phase (microseconds), and the allreduce wait split in two:
the time a rank waited for the last rank to reach the allreduce (the ranks' compute did not
take equally long: the machine, not the network) and the time after the last rank arrived
(the allreduce itself, and whatever overlap left of it). Means over steps, first steps
skipped (start-up). The ranks' clocks are the node's, aligned at a start-up barrier: read
the split of a multi-node run as approximate.
"""
import json
import statistics
import sys

PHASES = ("data wait", "forward", "backward", "allreduce wait", "optimizer")
SKIP = 10  # first steps: caches, lazily set-up MPI and BLAS buffers


def main(path):
    with open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    phases, wait = {}, {}
    for e in events:
        if e.get("ph") != "X" or e.get("args", {}).get("step", 0) < SKIP:
            continue
        rank, step, name = e["pid"], e["args"]["step"], e["name"]
        if name in PHASES:
            phases.setdefault(rank, {}).setdefault(name, []).append(e["dur"])
        if name == "allreduce wait":
            wait[(rank, step)] = (e["ts"], e["ts"] + e["dur"])
    ranks = sorted(phases)
    steps = sorted({s for (r, s) in wait if all((q, s) in wait for q in ranks)})
    if len(ranks) < 2 or not steps:
        sys.exit(f"{path}: no allreduce waits of two or more ranks (a 1-rank run?)")
    for_last, after_last, step_us = {r: [] for r in ranks}, {r: [] for r in ranks}, []
    for s in steps:
        last = max(wait[(r, s)][0] for r in ranks)
        for r in ranks:
            begin, end = wait[(r, s)]
            for_last[r].append(last - begin)
            after_last[r].append(max(0.0, end - last))
    out = {"timeline": path, "steps": len(steps), "ranks": {}}
    for r in ranks:
        med = {n: round(statistics.median(v), 1) for n, v in phases[r].items()}
        step = sum(statistics.mean(v) for v in phases[r].values())
        out["ranks"][str(r)] = {
            "median_us": med,
            "mean_step_us": round(step, 1),
            "wait_for_last_rank_us": round(statistics.mean(for_last[r]), 1),
            "after_last_rank_us": round(statistics.mean(after_last[r]), 1),
        }
    mean = lambda key: statistics.mean(v[key] for v in out["ranks"].values())
    step = mean("mean_step_us")
    out["wait_for_last_rank_frac"] = round(mean("wait_for_last_rank_us") / step, 4)
    out["after_last_rank_frac"] = round(mean("after_last_rank_us") / step, 4)
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
