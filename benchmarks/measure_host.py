"""Measure this machine's achieved peaks for the `host` target (graphperf/targets/host.toml).

What it measures, with torch on the CPU, each repeated and reported as min / median / max:

- matmul throughput for float32, bfloat16, float16 and float64 (square N x N x N, 2*N^3 FLOPs;
  float16 at a smaller N because CPUs without a native fp16 GEMM take minutes at N = 2048),
- memory bandwidth: a large tensor copy (dst.copy_(src)), counting bytes read + bytes written,
- per-op dispatch overhead: a tiny eager op (torch.add on 1-element tensors, out= preallocated).

The medians go into host.toml by hand, with the date, this command and the CPU model as the source.
These are one-off measurements of achieved throughput, not fitted efficiencies (calibrated = false).

Run:  .venv/bin/python benchmarks/measure_host.py [--n 2048] [--reps 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def matmul_gflops(dtype: torch.dtype, n: int, reps: int) -> dict[str, float]:
    """Achieved GFLOP/s of an n x n x n matmul (2*n^3 FLOPs), one value per repetition."""
    a = torch.randn(n, n, dtype=torch.float32).to(dtype)
    b = torch.randn(n, n, dtype=torch.float32).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.matmul(a, b, out=out)  # warm-up: thread pool, kernel selection, page faults
    flops = 2.0 * n**3
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=out)
        rates.append(flops / (time.perf_counter() - t0) / 1e9)
    return _stats(rates)


def copy_gbps(nbytes: int, reps: int) -> dict[str, float]:
    """Achieved GB/s (1e9 B/s) of dst.copy_(src), counting nbytes read + nbytes written."""
    src = torch.ones(nbytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up: fault in both buffers
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        dst.copy_(src)
        rates.append(2.0 * src.numel() * 4 / (time.perf_counter() - t0) / 1e9)
    return _stats(rates)


def dispatch_us(ops_per_rep: int, reps: int) -> dict[str, float]:
    """Microseconds per tiny eager op: torch.add on 1-element tensors into a preallocated out."""
    x = torch.ones(1)
    y = torch.ones(1)
    out = torch.empty(1)
    for _ in range(1000):  # warm-up
        torch.add(x, y, out=out)
    per_op = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(ops_per_rep):
            torch.add(x, y, out=out)
        per_op.append((time.perf_counter() - t0) / ops_per_rep * 1e6)
    return _stats(per_op)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="matmul size N (N x N x N)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per measurement")
    parser.add_argument("--fp16-n", type=int, default=512,
                        help="matmul size for float16, which has no fast CPU kernel on most hosts")
    parser.add_argument("--copy-mib", type=int, default=512, help="copy buffer size in MiB")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    results = {
        "machine": {
            "cpu_model": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "matmul_gflops": {},
    }
    for name, dtype in [
        ("float32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("float16", torch.float16),
        ("float64", torch.float64),
    ]:
        n = args.fp16_n if dtype == torch.float16 else args.n
        results["matmul_gflops"][name] = {"n": n, **matmul_gflops(dtype, n, args.reps)}
    results["copy_gbps"] = copy_gbps(args.copy_mib * 2**20, args.reps)
    results["dispatch_us"] = dispatch_us(20000, args.reps)

    m = results["machine"]
    print(f"machine: {m['cpu_model']}, {m['logical_cpus']} CPUs, torch {m['torch']} "
          f"({m['torch_threads']} threads, {m['cpu_capability']})")
    print(f"{'measurement':<32}{'min':>12}{'median':>12}{'max':>12}")
    for name, s in results["matmul_gflops"].items():
        label = f"matmul {name} {s['n']}^3 GFLOP/s"
        print(f"{label:<32}{s['min']:>12.2f}{s['median']:>12.2f}{s['max']:>12.2f}")
    s = results["copy_gbps"]
    label = f"copy {args.copy_mib} MiB GB/s (r+w)"
    print(f"{label:<32}{s['min']:>12.2f}{s['median']:>12.2f}{s['max']:>12.2f}")
    s = results["dispatch_us"]
    print(f"{'eager op dispatch us/op':<32}{s['min']:>12.3f}{s['median']:>12.3f}{s['max']:>12.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
