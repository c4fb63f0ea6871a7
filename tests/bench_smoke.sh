#!/usr/bin/env bash
# The benchmark suite (jobs/bench/run.sh) end to end on a small synthetic dataset with a few
# steps per run, the MLP only, without PyTorch: every configuration it promises prints a
# JSON line with a positive rate and the SGEMM rate measured around it, the ratios line
# carries every ratio, and the table shows the median and the range. With a placement
# threshold of 1 ns every multi-rank run counts as disturbed: each is run twice (one retry),
# both lines say so, and the table marks the medians as the disturbed runs' ("all"). What it
# measures is not checked here (that is its own job).
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
make_blobs "$WORK/d.h5" --train 4096 --test 256 --features 784 --classes 10
BENCH_MPINET="$MPINET" BENCH_SGEMM="$(dirname "$MPINET")/mpinet_sgemm_peak" \
  BENCH_DATA="$WORK/d.h5" BENCH_STEPS=24 BENCH_TORCH=0 MODELS=mlp BENCH_FAR_NS=1 \
  BENCH_DISTURBED_RETRIES=1 \
  timeout -k 5 240 "$ROOT/jobs/bench/run.sh" 1 > "$WORK/out.txt" 2>&1 \
  || { cat "$WORK/out.txt"; fail "the suite failed"; }

python3 - "$WORK/out.txt" "$(nproc)" <<'PY' || { cat "$WORK/out.txt"; fail "the suite's output is incomplete"; }
import json, re, sys
two_cpus = int(sys.argv[2]) >= 2  # the ceiling's side-by-side runs need 2 CPUs
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
rows = [json.loads(l) for l in lines]
def has(impl, ranks, variant):
    return any(r.get("impl") == impl and r.get("ranks") == ranks and r.get("variant") == variant
               and r.get("samples_per_s", 0) > 0 for r in rows)
missing = [f"{i} {n} {v}" for i, n, v in [("mpinet", 1, "default"), ("mpinet", 1, "one-core"),
           ("mpinet", 1, "stream"), ("mpinet", 1, "half-batch"), ("mpinet", 1, "hybrid"),
           ("mpinet", 2, "default"),
           ("mpinet", 2, "mpi"),
           ("mpinet", 2, "mpi-no-overlap"), ("mpinet", 2, "no-prefetch")]
           + [("ceiling", 2, "default")] * two_cpus
           if not has(i, n, v)]
assert not missing, f"no line (or no positive rate) for: {missing}"
assert any(r.get("skipped") == "pytorch" for r in rows), "no line saying PyTorch was skipped"
assert any("sgemm_gflops" in r and r["sgemm_gflops"] > 0 for r in rows), "no SGEMM rate"
ratios = [r for r in rows if r.get("ratios") == "mlp"]
assert ratios, "no ratios line"
for key in ["mpinet2_over_mpinet1", "mpinet2_over_mpinet1_one_core", "prefetch_gain_1",
            "twice_half_batch_over_mpinet1", "node_gain", "overlap_gain", "prefetch_gain",
            "hybrid_over_mpinet2", "hybrid_over_mpinet1_one_core"] \
        + ["ceiling2_over_mpinet1", "mpinet2_over_ceiling2"] * two_cpus:
    assert ratios[0].get(key, 0) > 0, f"ratio {key} missing or not positive"
for r in rows:
    if r.get("impl") == "mpinet":
        for key in ["data_frac", "forward_frac", "backward_frac", "comm_frac", "optimizer_frac",
                    "peak_rss_mb", "launch_to_first_step_s", "cpus_per_rank", "blas_threads",
                    "prefetch",
                    "comm_after_last_frac"]:
            assert key in r, f"{key} missing from {r}"
        # the SGEMM rate measured around this very run, against which its fraction reads; the
        # bound is what printing costs (the fraction to 3 decimals, the rate to 1, GFLOP/s to
        # 2): a fixed 1% failed on the sanitizer build's 3.5% fractions
        near, frac = r.get("sgemm_gflops_near", 0), r.get("sgemm_fraction", 0)
        rounding = (0.0005 * near + 0.05 * frac) * r["ranks"] + 0.005 + 1e-4
        assert near > 0 and abs(frac * near * r["ranks"] - r["gflops"]) <= rounding, \
            f"sgemm fraction not against the run's own SGEMM rate: {r}"
        # measured where the node's shared memory sums (and trivially at 1 rank), not for MPI
        after, comm = r["comm_after_last_frac"], r["comm_frac"]
        if r["variant"].startswith("mpi"):
            assert after is None, f"an MPI run with a split of its communication: {r}"
        else:
            assert after is not None and 0 <= after <= comm + 1e-4, f"comm split: {r}"
def one(variant):
    return [r for r in rows if r.get("impl") == "mpinet" and r.get("ranks") == 1
            and r.get("variant") == variant][0]
# 1 rank bound to a core has one CPU and no prefetch thread; unbound, it has every CPU
assert one("one-core")["cpus_per_rank"] == 1 and one("one-core")["prefetch"] == "off", \
    f"the one-core run had more than one CPU: {one('one-core')}"
assert one("default")["cpus_per_rank"] == int(sys.argv[2]), f"1 default: {one('default')}"
assert one("default")["prefetch"] == ("on" if two_cpus else "off"), f"1 default: {one('default')}"
# the hybrid run: 2 BLAS threads on every CPU, which they take (a spare one only beyond 2)
assert one("hybrid")["blas_threads"] == 2 and one("default")["blas_threads"] == 1, \
    f"BLAS threads: {one('hybrid')}, {one('default')}"
assert one("hybrid")["prefetch"] == ("on" if int(sys.argv[2]) > 2 else "off"), \
    f"1 hybrid: {one('hybrid')}"
table = [l for l in open(sys.argv[1]) if re.match(r"(mpinet|ceiling) +mlp ", l)]
assert len(table) == 9 + two_cpus, f"{len(table)} table rows for mpinet and the ceiling"
for l in table:  # the median, then the fastest and slowest run
    assert re.search(r" \d+ +\d+-\d+ ", l), f"no median and range in: {l.strip()}"
if two_cpus:  # the placement probe around every multi-rank run
    assert any(r.get("cross_core_ns_nearest", 0) > 0 for r in rows), "no nearest round trip"
    for v in ["default", "mpi", "mpi-no-overlap", "no-prefetch"]:
        runs = [r for r in rows if r.get("impl") == "mpinet" and r.get("ranks") == 2
                and r.get("variant") == v]
        assert len(runs) == 2, f"2 {v}: {len(runs)} runs, not a run and its retry"
        for r in runs:
            assert r.get("disturbed") is True and r.get("cross_core_ns", 0) > 0 \
                and r.get("pair_slowdown", 0) > 0, f"no placement verdict in {r}"
    for l in table:
        assert l.split()[2] == "1" or l.startswith("ceiling") or l.rstrip().endswith(" all"), \
            f"a multi-rank row not marked as all disturbed: {l.strip()}"
PY
echo "bench suite: every configuration, ratio and column present"
