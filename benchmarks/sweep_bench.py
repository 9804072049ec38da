"""Sweep throughput (issue 15): points per second of `graphperf sweep`, end to end.

    python benchmarks/sweep_bench.py [--points N] [--big-points N] [--jobs 2] [--out benchmarks/RESULTS_SWEEP.md]

1. One core: llama3-8b decode (batch 1, kv 2048, bf16) on h100 (the size-aware kernel model) and on a100
   (roofline with efficiencies), `target.hbm_gbps` swept over N values, in this process (--jobs 1). The disk cache
   holds the graph (warmed first, not timed); the timed run loads it, canonicalizes, counts and plans it again.
   Goal: 100,000 points/s.
2. The 3-workload sweep: llama3-8b, gpt2 and mixtral-8x7b decode (batch 1, kv 1000, bf16) on h100, each over
   `target.hbm_gbps` x `target.launch_overhead_us` (N/3 points each), --jobs 2 worker processes, through the CLI's
   `run_sweep` to a CSV: once with an empty graph cache (three captures included), once with it warm.
   Goal: 10^6 points in under a minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from graphperf.sweep import parse_spec, run_sweep  # noqa: E402
from graphperf.sweep import run as sweep_run  # noqa: E402


def _timed(spec, cache: str, jobs: int = 1) -> float:
    sweep_run._MEMO.clear()  # nothing kept in this process from an earlier run: the graph comes from disk
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_sweep(spec, os.path.join(tmp, "t.csv"), cache=cache, jobs=jobs)
        return time.perf_counter() - start


def one_core(target: str, points: int, cache: str) -> float:
    axes = {"workload": ["llama3-8b"], "phase": ["decode"], "batch": [1], "kv_len": [2048], "dtype": ["bfloat16"],
            "target": [target]}
    _timed(parse_spec({"axes": {**axes, "target.hbm_gbps": [1000]}}), cache)  # capture and cache the graph once
    spec = parse_spec({"axes": {**axes, "target.hbm_gbps": {"start": 1000, "stop": 1000 + points - 1, "step": 1}}})
    return points / _timed(spec, cache)


def three_workloads(points: int, jobs: int, cache: str) -> tuple[int, float, float]:
    per = -(-points // 6)  # per workload: `per` hbm values x 2 launch gaps
    spec = parse_spec({"axes": {"workload": ["llama3-8b", "gpt2", "mixtral-8x7b"], "phase": ["decode"], "batch": [1],
                                "kv_len": [1000], "dtype": ["bfloat16"], "target": ["h100"],
                                "target.hbm_gbps": [1000 + 5000 * i / per for i in range(per)],
                                "target.launch_overhead_us": [0.5, 1.0]}})
    cold = _timed(spec, cache, jobs)
    warm = _timed(spec, cache, jobs)
    return spec.points, cold, warm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--big-points", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        rates = {t: one_core(t, args.points, cache) for t in ("h100", "a100")}
    with tempfile.TemporaryDirectory() as cache:
        big, cold, warm = three_workloads(args.big_points, args.jobs, cache)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"# Sweep throughput ({when}; {machine})", "",
             f"Command: `python benchmarks/sweep_bench.py --points {args.points} --big-points {args.big_points} "
             f"--jobs {args.jobs}` (the machine's cores are shared with other work: figures vary by tens of %).", "",
             f"One core (--jobs 1): llama3-8b decode b1 kv2048 bf16, `target.hbm_gbps` over {args.points:,} values, "
             "end to end to a CSV; the graph is on the disk cache (loaded, canonicalized, counted and planned in the "
             "timed run).", "",
             "| target (model) | points/s | goal |", "|---|---|---|"]
    for t, model in (("h100", "size-aware kernel model"), ("a100", "roofline with efficiencies")):
        lines.append(f"| {t} ({model}) | {rates[t]:,.0f} | 100,000 |")
    lines += ["", f"Three workloads (llama3-8b, gpt2, mixtral-8x7b decode b1 kv1000 bf16 on h100), {big:,} points "
              f"(`target.hbm_gbps` x `target.launch_overhead_us`, {big // 3:,} each), --jobs {args.jobs}, to a CSV:", "",
              "| graph cache | seconds | points/s | goal |", "|---|---|---|---|",
              f"| empty (three captures included) | {cold:.1f} | {big / cold:,.0f} | under 60 s |",
              f"| warm | {warm:.1f} | {big / warm:,.0f} | under 60 s |", "",
              "The sweep is columnar: a chunk of up to 50,000 points of one (shape, mode, base target, structure) is",
              "projected as numpy arrays whose rates come from the swept values (graphperf/sweep/vector.py `Variants`,",
              "no Target per point), each distinct node entry's device time computed once, the CUDA-graph queue in",
              "place; keys are hashed per axis value and folded as arrays; each finished chunk is one .npz journal file;",
              "the table is written from columns (pyarrow)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
