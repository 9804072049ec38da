"""CPU microbenchmarks for `graphperf calibrate`, on a fixed number of threads.

What each one measures (every figure a `Measurement` over `repeats` repetitions):

- ``torch_matmul(dtype)``: torch.matmul of two n x n matrices, 2 n^3 FLOPs, GFLOP/s. float16 uses
  a smaller n: CPUs without a native fp16 GEMM run it hundreds of times slower.
- ``ort_matmul``: one ONNX MatMul (float32, n x n x n) in an onnxruntime CPU session with
  ``threads`` intra-op threads, 2 n^3 FLOPs per run, GFLOP/s (the session.run call is included;
  at the default n it is under 1% of the time).
- ``copy`` (dst = src) and ``triad`` (a = b + s*c) on arrays far larger than the last-level cache,
  bytes read + bytes written counted (copy 2 x, triad 3 x the array bytes), GB/s (1e9 B/s).
- ``cache_sweep``: the copy at working sets from 16 KiB to 64 MiB (read + written), GB/s, looped
  so each repetition takes about a millisecond: the steps show the cache levels.
- ``ort_dispatch``: per-node cost inside onnxruntime: a chain of k tiny Add nodes (1 element)
  against a chain of 1, ``(t_k - t_1) / (k - 1)`` per repetition, microseconds per node.
- ``ort_profiled_node``: what an onnxruntime profile reports per tiny node (median kernel_time of
  the same chain in a profiled session), microseconds: the per-node floor of `graphperf profile`.
- ``torch_dispatch``: an eager torch.add on 1-element tensors with ``out=``, microseconds per op.

Threads: torch.set_num_threads(threads) for the torch benchmarks (restored afterwards) and
intra_op_num_threads = threads for onnxruntime; `graphperf profile` uses 1 by default.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from ..correlate.ort_profile import profiling_options
from .measure import Measurement, repeat, slope

__all__ = ["Sizes", "QUICK", "DEFAULT", "TINY", "torch_matmul", "ort_matmul", "copy", "triad", "cache_sweep",
           "ort_dispatch", "ort_profiled_node", "torch_dispatch", "run_cpu"]


@dataclass(frozen=True)
class Sizes:
    matmul_n: int  # float32 / bfloat16 / float64 matmuls
    fp16_n: int  # float16 matmul (no fast CPU kernel on most hosts)
    stream_bytes: int  # copy / triad array size (each array)
    sweep_max_bytes: int  # largest cache-sweep working set
    dispatch_chain: int  # k in the ORT chain
    dispatch_ops: int  # eager ops timed per repetition


DEFAULT = Sizes(matmul_n=1024, fp16_n=256, stream_bytes=256 * 2**20, sweep_max_bytes=64 * 2**20,
                dispatch_chain=64, dispatch_ops=20000)
QUICK = Sizes(matmul_n=512, fp16_n=128, stream_bytes=128 * 2**20, sweep_max_bytes=16 * 2**20,
              dispatch_chain=32, dispatch_ops=5000)
TINY = Sizes(matmul_n=64, fp16_n=32, stream_bytes=2**20, sweep_max_bytes=256 * 2**10, dispatch_chain=8,
             dispatch_ops=200)


@contextmanager
def torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_matmul(dtype_name: str, n: int, repeats: int) -> Measurement:
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    flops = 2.0 * n**3
    return repeat(f"torch matmul {dtype_name} {n}^3", "GFLOP/s", lambda: torch.matmul(a, b, out=out), repeats,
                  lambda s: flops / s / 1e9)


def _session(model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node as written
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _model(nodes, inputs, outputs):
    from onnx import helper

    return helper.make_model(helper.make_graph(nodes, "calibrate", inputs, outputs),
                             opset_imports=[helper.make_opsetid("", 17)])


def ort_matmul(n: int, repeats: int, threads: int) -> Measurement:
    import numpy as np
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    model = _model([helper.make_node("MatMul", ["a", "b"], ["c"])],
                   [vi("a", TensorProto.FLOAT, [n, n]), vi("b", TensorProto.FLOAT, [n, n])],
                   [vi("c", TensorProto.FLOAT, [n, n])])
    sess = _session(model, threads)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((n, n), dtype=np.float32), "b": rng.standard_normal((n, n), dtype=np.float32)}
    flops = 2.0 * n**3
    return repeat(f"onnxruntime MatMul float32 {n}^3", "GFLOP/s", lambda: sess.run(None, feeds), repeats,
                  lambda s: flops / s / 1e9)


def copy(nbytes: int, repeats: int, label: str = "", inner: int = 1) -> Measurement:
    import torch

    src = torch.ones(max(nbytes // 4, 1))
    dst = torch.empty_like(src)
    moved = 2.0 * src.numel() * 4
    return repeat(label or f"copy {nbytes / 2**20:g} MiB (read + write)", "GB/s", lambda: dst.copy_(src), repeats,
                  lambda s: moved / s / 1e9, inner=inner)


def triad(nbytes: int, repeats: int) -> Measurement:
    import torch

    b = torch.ones(max(nbytes // 4, 1))
    c = torch.ones_like(b)
    a = torch.empty_like(b)
    moved = 3.0 * b.numel() * 4
    return repeat(f"triad a = b + s*c, {nbytes / 2**20:g} MiB arrays (2 reads + 1 write)", "GB/s",
                  lambda: torch.add(b, c, alpha=3.0, out=a), repeats, lambda s: moved / s / 1e9)


def cache_sweep(max_bytes: int, repeats: int) -> list[Measurement]:
    """Copy bandwidth at working sets 16 KiB, 64 KiB, ... up to `max_bytes` (working set = src + dst)."""
    out = []
    size = 16 * 2**10
    while size <= max_bytes:
        inner = max(1, int(2**20 // size))  # about 1 MiB..few ms of traffic per repetition
        out.append(copy(size // 2, repeats, label=f"copy working set {_human(size)}", inner=inner))
        size *= 4
    return out


def _human(nbytes: int) -> str:
    return f"{nbytes // 2**20} MiB" if nbytes >= 2**20 else f"{nbytes // 2**10} KiB"


def ort_dispatch(chain: int, repeats: int, threads: int) -> Measurement:
    import time

    import numpy as np
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info

    def chain_model(k: int):
        names = ["x"] + [f"t{i}" for i in range(k)]
        nodes = [helper.make_node("Add", [names[i], "x"], [names[i + 1]]) for i in range(k)]
        return _model(nodes, [vi("x", TensorProto.FLOAT, [1])], [vi(names[-1], TensorProto.FLOAT, [1])])

    short, long = _session(chain_model(1), threads), _session(chain_model(chain), threads)
    feeds = {"x": np.ones(1, dtype=np.float32)}
    runs = 200

    def timed(sess) -> float:
        t0 = time.perf_counter()
        for _ in range(runs):
            sess.run(None, feeds)
        return (time.perf_counter() - t0) / runs

    timed(short), timed(long)  # warm-up
    small, large = [], []
    for _ in range(repeats):
        small.append(timed(short))
        large.append(timed(long))
    return slope(f"onnxruntime per-node dispatch (chain of {chain} vs 1 tiny Add)", "us", small, large, chain - 1)


def ort_profiled_node(chain: int, repeats: int, threads: int) -> Measurement:
    """What an onnxruntime *profile* reports for a tiny node: the median ``kernel_time`` of a chain of
    1-element Adds in a profiled session (one value per run), microseconds. Profiling adds its own cost
    per node, and onnxruntime reports whole microseconds, so this is larger than `ort_dispatch`; it is
    the per-node floor that `graphperf profile` measures."""
    import json
    import os
    import tempfile

    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    names = ["x"] + [f"t{i}" for i in range(chain)]
    nodes = [helper.make_node("Add", [names[i], "x"], [names[i + 1]], name=f"add{i}") for i in range(chain)]
    model = _model(nodes, [vi("x", TensorProto.FLOAT, [1])], [vi(names[-1], TensorProto.FLOAT, [1])])
    with tempfile.TemporaryDirectory(prefix="graphperf-calibrate-") as tmp:
        so = profiling_options(os.path.join(tmp, "ort"), threads, basic=False)  # as `graphperf profile`
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        feeds = {"x": np.ones(1, dtype=np.float32)}
        for _ in range(repeats + 1):
            sess.run(None, feeds)
        with open(sess.end_profiling(), encoding="utf-8") as fh:
            events = json.load(fh)
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[1:]  # warm-up
    per_run = [[float(e["dur"]) for e in events if e.get("cat") == "Node" and str(e.get("name")).endswith("_kernel_time")
                and start <= e["ts"] <= end] for start, end in runs]
    import statistics

    return Measurement(f"onnxruntime profiled tiny node (kernel_time of {chain} 1-element Adds)", "us",
                       tuple(float(statistics.median(r)) for r in per_run if r))


def torch_dispatch(ops: int, repeats: int) -> Measurement:
    import torch

    x, y, out = torch.ones(1), torch.ones(1), torch.empty(1)

    def run():
        for _ in range(ops):
            torch.add(x, y, out=out)

    return repeat("torch eager dispatch (torch.add, 1 element, out=)", "us", run, repeats,
                  lambda s: s / ops * 1e6)


def run_cpu(sizes: Sizes, repeats: int, threads: int, progress=lambda name: None) -> dict[str, object]:
    """Every CPU benchmark; keys are stable names the target writer reads. bfloat16 is skipped
    (with the reason) where torch has no bf16 matmul for this CPU."""
    import torch

    results: dict[str, object] = {}
    with torch_threads(threads):
        for dtype, n in (("float32", sizes.matmul_n), ("bfloat16", sizes.matmul_n), ("float16", sizes.fp16_n),
                         ("float64", sizes.matmul_n)):
            progress(f"torch matmul {dtype}")
            try:
                results[f"torch_matmul_{dtype}"] = torch_matmul(dtype, n, repeats)
            except RuntimeError as e:  # no kernel for this dtype on this CPU
                results[f"torch_matmul_{dtype}"] = f"not measured: {str(e).splitlines()[0][:120]}"
        progress("onnxruntime matmul")
        results["ort_matmul_float32"] = ort_matmul(sizes.matmul_n, repeats, threads)
        progress("memory bandwidth")
        results["copy"] = copy(sizes.stream_bytes, repeats)
        results["triad"] = triad(sizes.stream_bytes, repeats)
        progress("cache sweep")
        results["cache_sweep"] = cache_sweep(sizes.sweep_max_bytes, repeats)
        progress("dispatch overhead")
        results["ort_dispatch"] = ort_dispatch(sizes.dispatch_chain, repeats, threads)
        results["ort_profiled_node"] = ort_profiled_node(sizes.dispatch_chain, repeats, threads)
        results["torch_dispatch"] = torch_dispatch(sizes.dispatch_ops, repeats)
    return results
