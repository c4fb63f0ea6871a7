#!/usr/bin/python3
"""comm_efficiency.py: weak-scaling efficiency of simulated sweeps with the noise of the
measured computation taken out.

    jobs/scaling/comm_efficiency.py jobs/scaling/results/simulated/*/scaling.csv

A simulated point's step is rank 0's computation, measured on this machine's core while the
simulation runs (and charged to every rank in timing-only mode), plus the simulated
communication and data wait. The communication is the platform model's alone; the computation
varies from run to run with this machine's load (one warm step at the largest points). In weak
scaling every rank computes the same rows at every world size, so the step at N ranks with the
1-rank run's computation is compute(1) + comm(N) + data(N), and

    efficiency_compute_as_1_rank = step(1) / (compute(1) + comm(N) + data(N))

compares communication alone. compute_ratio = compute(N) / compute(1) says how far the run's own
computation strayed (1 if the core ran as fast at both points). One JSON line per weak point.
"""
import csv
import json
import os
import sys


def split(row):
    step = float(row["global_batch"]) / float(row["samples_per_s"])
    comm = float(row["comm_fraction"]) * step
    data = float(row["data_fraction"]) * step
    return step, step - comm - data, comm, data


for path in sys.argv[1:]:
    rows = [r for r in csv.DictReader(open(path)) if r["scaling"] == "weak"]
    base = [r for r in rows if r["ranks"] == "1"]
    if not base:
        continue
    step1, compute1, _, _ = split(base[0])
    for r in rows:
        step, compute, comm, data = split(r)
        print(json.dumps({
            "sweep": os.path.basename(os.path.dirname(os.path.abspath(path))),
            "mode": r["mode"], "ranks": int(r["ranks"]),
            "efficiency": float(r["efficiency"]),
            "efficiency_compute_as_1_rank": round(step1 / (compute1 + comm + data), 3),
            "compute_ratio": round(compute / compute1, 3),
            "comm_ms": round(1e3 * comm, 3)}))
