"""Measure kernel sweeps on this machine's GPU (`graphperf calibrate --device cuda --sweeps FILE.json`).

Each record is one PyTorch call from `graphperf.calibrate.sweeps.sweep_call` (the same calls the sweep file
reader rebuilds as graphs), timed as shared/h200 was: ``triton.testing.do_bench`` (CUDA events around one
call, L2 flushed before it; the median and the 10th/90th percentiles), or, without Triton, CUDA events
around each call after writing a 256 MB buffer (the same flush). The file written has the sweep schema, so
``graphperf calibrate --fit FILE.json`` fits the kernel model to it.

`GRIDS` holds the shapes: ``default`` (the shared/h200 grid: LLM-shaped GEMMs over M = 1..16384, square
matmuls per dtype, attention prefill/decode, elementwise at three sizes), ``quick`` (a subset) and ``tiny``
(a few small records; with ``--device cpu`` it exercises the path without a GPU: the times are CPU times
and fit nothing real).
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
from typing import Any, Callable

from .sweeps import ELEMENTWISE_CALLS, SCHEMA, sweep_call

__all__ = ["GRIDS", "grid", "measure_sweeps", "write_sweeps"]

_NK = [(4096, 4096), (6144, 4096), (14336, 4096), (4096, 14336), (1024, 4096), (128256, 4096), (768, 768),
       (2304, 768), (3072, 768), (768, 3072), (8192, 8192)]
_M = [1, 16, 64, 128, 512, 2048, 8192, 16384]


def _default() -> dict[str, list[dict]]:
    gemm = [{"op": "linear", "dtype": "bfloat16", "m": m, "n": n, "k": k} for n, k in _NK for m in _M
            if m * n <= 16384 * 57344]
    for dtype, sizes in (("float16", [256, 512, 1024, 2048, 4096, 8192]), ("float32", [256, 512, 1024, 2048, 4096]),
                         ("tf32", [256, 512, 1024, 2048, 4096])):
        gemm += [{"op": "mm", "dtype": dtype, "m": s, "n": s, "k": s} for s in sizes]
    attention = []
    for s in (512, 1024, 2048, 4096, 8192):
        attention += [{"b": 1, "h": 32, "hkv": hkv, "sq": s, "skv": s, "d": 128, "causal": c}
                      for hkv, c in ((32, True), (32, False), (8, True))]
    attention += [{"b": 8, "h": 12, "hkv": 12, "sq": 1024, "skv": 1024, "d": 64, "causal": True},
                  {"b": 32, "h": 12, "hkv": 12, "sq": 128, "skv": 128, "d": 64, "causal": False}]
    attention += [{"b": b, "h": 32, "hkv": 8, "sq": 1, "skv": s, "d": 128, "causal": False}
                  for b in (1, 16, 64) for s in (1024, 4096, 16384)]
    elementwise = [{"op": op, "shape": [rows, 4096]} for rows in (256, 4096, 32768) for op in ELEMENTWISE_CALLS]
    elementwise += [{"op": "embedding", "shape": [t, 4096], "table": [128256, 4096]} for t in (2048, 16384)]
    return {"gemm": gemm, "attention": attention, "elementwise": elementwise}


def _every(records: dict[str, list[dict]], step: int) -> dict[str, list[dict]]:
    return {g: rs[::step] for g, rs in records.items()}


GRIDS = ("default", "quick", "tiny")


def grid(name: str) -> dict[str, list[dict]]:
    """The records of grid `name` (`GRIDS`), without times."""
    if name == "tiny":
        return {"gemm": [{"op": "linear", "dtype": "float32", "m": m, "n": 64, "k": 64} for m in (1, 32)],
                "attention": [{"b": 1, "h": 2, "hkv": 2, "sq": 16, "skv": 16, "d": 16, "causal": True}],
                "elementwise": [{"op": op, "shape": [8, 64]} for op in ("add", "softmax")]}
    records = _default()
    return _every(records, 3) if name == "quick" else records


def _timer_name(device: str) -> str:
    if device != "cuda":
        return "time.perf_counter (dry run)"
    try:
        import triton.testing  # noqa: F401
    except ImportError:
        return "CUDA events after a 256 MB L2 flush (no triton)"
    return "triton.testing.do_bench"


def _do_bench(fn: Callable[[], Any], device: str) -> dict[str, float]:
    """Median and 10th/90th percentile milliseconds of one call of `fn`."""
    import torch

    if device != "cuda":  # a dry run on the CPU: wall time of each call
        fn()
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
        ts.sort()
        return {"median_ms": statistics.median(ts), "p10_ms": ts[0], "p90_ms": ts[-1]}
    try:
        from triton.testing import do_bench
    except ImportError:
        do_bench = None
    if do_bench is not None:
        q = do_bench(fn, warmup=10, rep=60, quantiles=[0.5, 0.1, 0.9])
        return {"median_ms": q[0], "p10_ms": q[1], "p90_ms": q[2]}
    flush = torch.empty(64 * 2**20, dtype=torch.int32, device=device)  # 256 MB, as do_bench's cache flush
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(30):
        flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        ts.append(start.elapsed_time(end))
    ts.sort()
    return {"median_ms": statistics.median(ts), "p10_ms": ts[len(ts) // 10], "p90_ms": ts[len(ts) * 9 // 10]}


def _fill(args) -> None:
    """Random normal floats (as shared/h200 measured), random rows of the table for an embedding's ids."""
    for a in args:
        if a.is_floating_point():
            a.normal_()
    if len(args) == 2 and not args[0].is_floating_point():  # F.embedding(ids, table)
        args[0].random_(0, args[1].shape[0])


def measure_sweeps(name: str = "default", device: str = "cuda", progress=None) -> dict[str, Any]:
    """Time every record of grid `name` on `device`; a record that fails is kept out with its error."""
    import torch

    data: dict[str, Any] = {"schema": SCHEMA, "meta": {
        "torch": torch.__version__, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (dry run)",
        "grid": name, "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timer": _timer_name(device)}, "errors": []}
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        for group, records in grid(name).items():
            out = data.setdefault(group, [])
            for rec in records:
                try:
                    torch.backends.cuda.matmul.allow_tf32 = rec.get("dtype") == "tf32"
                    key, fn, args = sweep_call(group, rec, device)
                    _fill(args)
                    out.append({**rec, **_do_bench(lambda: fn(*args), device)})
                except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
                    data["errors"].append({"group": group, "record": rec, "error": repr(e)[:300]})
                if progress:
                    progress(f"{group} {len(out)}/{len(records)}")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return data


def write_sweeps(data: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
