"""CUDA microbenchmarks for `graphperf calibrate --device cuda` (only where torch.cuda.is_available()).

Kept small, and untested in CI (no GPU there): matmul GFLOP/s per dtype (float32 with TF32 off,
as PyTorch's default, and bfloat16 / float16), device copy bandwidth (read + write counted), and
the launch overhead of a tiny kernel (torch.add on 1 element, timed over many launches with one
synchronize). Times come from CUDA events around each repetition.
"""

from __future__ import annotations

from .measure import Measurement

__all__ = ["run_cuda"]


def _timed(name: str, unit: str, fn, repeats: int, per_call, inner: int = 1) -> Measurement:
    import torch

    fn()
    torch.cuda.synchronize()
    values = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        values.append(per_call(start.elapsed_time(end) * 1e-3 / inner))
    return Measurement(name, unit, tuple(values))


def run_cuda(matmul_n: int, stream_bytes: int, repeats: int) -> dict[str, object]:
    import torch

    dev = torch.device("cuda")
    results: dict[str, object] = {"device_name": torch.cuda.get_device_name(dev)}
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for dtype in ("float32", "bfloat16", "float16"):
            a = torch.randn(matmul_n, matmul_n, device=dev, dtype=getattr(torch, dtype))
            b = torch.randn_like(a)
            flops = 2.0 * matmul_n**3
            results[f"torch_matmul_{dtype}"] = _timed(f"cuda matmul {dtype} {matmul_n}^3", "GFLOP/s",
                                                      lambda: a @ b, repeats, lambda s: flops / s / 1e9, inner=10)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    src = torch.ones(stream_bytes // 4, device=dev)
    dst = torch.empty_like(src)
    results["copy"] = _timed(f"cuda copy {stream_bytes / 2**20:g} MiB (read + write)", "GB/s",
                             lambda: dst.copy_(src), repeats, lambda s: 2.0 * stream_bytes / s / 1e9, inner=10)
    x, out = torch.ones(1, device=dev), torch.empty(1, device=dev)
    results["launch"] = _timed("cuda launch (torch.add, 1 element)", "us", lambda: torch.add(x, x, out=out),
                               repeats, lambda s: s * 1e6, inner=1000)
    return results
