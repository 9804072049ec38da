"""Kernel sweeps as one-op graphs: each record of a GPU sweep file (GEMM, attention, elementwise) becomes
the graph graphperf captures for the PyTorch call that was timed, so a projection can be compared with it.

A sweep file is JSON with ``schema = "graphperf-reference.h200-measurements/1"`` (what
``shared/h200/method/h200_measure.py`` and ``graphperf calibrate --device cuda --sweeps`` write):
lists ``gemm`` (``op`` linear | mm | scaled_mm, ``dtype``, ``m``, ``n``, ``k``), ``attention`` (``b``,
``h``, ``hkv``, ``sq``, ``skv``, ``d``, ``causal``) and ``elementwise`` (``op`` from `ELEMENTWISE_CALLS` or
``embedding``, ``shape``, ``table``), each with ``median_ms`` measured by ``triton.testing.do_bench``
(CUDA events around one call, L2 flushed before it).

Guarantees: every record yields a `SweepRow` or a `Skipped` with the reason (an op capture cannot take,
an unknown op name); graphs are captured on meta tensors (nothing is allocated); a missing, unreadable
or foreign file is a `UsageError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UsageError

__all__ = ["SCHEMA", "SweepRow", "Skipped", "ELEMENTWISE_CALLS", "load_sweeps", "sweep_call"]

SCHEMA = "graphperf-reference.h200-measurements/1"


@dataclass(frozen=True)
class SweepRow:
    key: str  # "gemm linear bfloat16 512x4096x4096", "attention b1 h32/8 2048x2048 d128 causal", ...
    group: str  # gemm | attention | elementwise
    graph: Any  # graphperf.ir.Graph, canonicalized
    measured_s: float
    allow_tf32: bool = False  # the record ran with torch.backends.cuda.matmul.allow_tf32 = True


@dataclass(frozen=True)
class Skipped:
    key: str
    reason: str


def _elementwise_calls() -> dict[str, Callable]:
    import torch
    import torch.nn.functional as F

    def half_cat(x):
        h = x.shape[1] // 2
        return torch.cat([x[:, :h], x[:, h:]], 1)

    return {"add": lambda x: x + x, "mul": lambda x: x * x, "gelu": F.gelu,
            "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu, "exp": torch.exp,
            "clone": lambda x: x.clone(), "to_float32": lambda x: x.float(),
            "transpose_contiguous": lambda x: x.t().contiguous(), "softmax": lambda x: torch.softmax(x, -1),
            "layer_norm": lambda x: F.layer_norm(x, (x.shape[-1],)), "rms_norm": lambda x: F.rms_norm(x, (x.shape[-1],)),
            "sum_lastdim": lambda x: x.sum(-1), "cat2": half_cat}


#: The elementwise sweep's ops, by record name (the call that was timed, on a bf16 [rows, cols] tensor).
ELEMENTWISE_CALLS = ("add", "mul", "gelu", "gelu_tanh", "silu", "exp", "clone", "to_float32", "transpose_contiguous",
                     "softmax", "layer_norm", "rms_norm", "sum_lastdim", "cat2")


def sweep_call(group: str, rec: dict, device: str = "meta") -> tuple[str, Callable, tuple]:
    """(key, fn, args) of a sweep record: the PyTorch call it timed, on `device` tensors. ValueError for a
    record graphperf cannot build (the message says why)."""
    import torch
    import torch.nn.functional as F

    if group == "gemm":
        dtype = {"tf32": "float32"}.get(rec["dtype"], rec["dtype"])
        dt = getattr(torch, dtype, None)
        m, n, k = rec["m"], rec["n"], rec["k"]
        key = f"gemm {rec['op']} {rec['dtype']} {m}x{n}x{k}"
        if rec["op"] == "linear":
            return key, F.linear, (torch.empty(m, k, dtype=dt, device=device), torch.empty(n, k, dtype=dt, device=device))
        if rec["op"] == "mm":
            return key, torch.matmul, (torch.empty(m, k, dtype=dt, device=device),
                                       torch.empty(k, n, dtype=dt, device=device))
        raise ValueError(f"{rec['op']}: not a torch call sweep_call builds (scaled_mm: see _scaled_mm_graph)")
    if group == "attention":
        b, h, hkv, sq, skv, d, causal = (rec[x] for x in ("b", "h", "hkv", "sq", "skv", "d", "causal"))
        key = f"attention b{b} h{h}/{hkv} {sq}x{skv} d{d}{' causal' if causal else ''}"
        q = torch.empty(b, h, sq, d, dtype=torch.bfloat16, device=device)
        kv = torch.empty(b, hkv, skv, d, dtype=torch.bfloat16, device=device)
        gqa = {"enable_gqa": True} if h != hkv else {}

        def sdpa(q, k, v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, **gqa)

        return key, sdpa, (q, kv, kv.clone())
    if group == "elementwise":
        op, shape = rec["op"], rec["shape"]
        key = f"elementwise {op} {'x'.join(map(str, shape))}"
        if op == "embedding":
            ids = torch.empty(shape[0], dtype=torch.long, device=device)
            return key, F.embedding, (ids, torch.empty(*rec["table"], dtype=torch.bfloat16, device=device))
        if op not in ELEMENTWISE_CALLS:
            raise ValueError(f"elementwise op {op!r} is not one of {', '.join(ELEMENTWISE_CALLS)}")
        return key, _elementwise_calls()[op], (torch.empty(*shape, dtype=torch.bfloat16, device=device),)
    raise ValueError(f"unknown sweep group {group!r}")


def _module(fn: Callable):
    import torch

    class OneOp(torch.nn.Module):
        def forward(self, *args):
            return fn(*args)

    return OneOp()


def _scaled_mm_graph(rec: dict):
    """``torch._scaled_mm(a[m, k], b[n, k].t(), out_dtype=bfloat16)`` with per-tensor scales, built as graphperf's
    IR directly (torch cannot trace float8 matmuls on meta tensors): one matmul of float8 operands with a
    bfloat16 output; the two scalar scales are read with the operands."""
    from graphperf.ir import Graph, Node, TensorType, Value
    from graphperf.ops import canonical

    m, n, k, dt = rec["m"], rec["n"], rec["k"], rec["dtype"]
    values = {"a": Value("a", TensorType((m, k), dt), "input"), "b": Value("b", TensorType((n, k), dt), "input"),
              "out": Value("out", TensorType((m, n), "bfloat16"), producer="scaled_mm")}
    node = Node("scaled_mm", canonical("matmul"), "aten._scaled_mm", ("a", "b"), ("out",), {"trans_b": True})
    return f"gemm scaled_mm {dt} {m}x{n}x{k}", Graph("scaled_mm", [node], values, ("out",))


def load_sweeps(path: str) -> tuple[list[SweepRow], list[Skipped]]:
    """Every record of the sweep file at `path` as a one-op graph with its measured time."""
    from graphperf.api import capture
    from graphperf.passes import canonicalize

    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except OSError as e:
        raise UsageError(f"{path}: cannot read sweep file: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{path}: not a JSON sweep file ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UsageError(f"{path}: not a graphperf sweep file (expected \"schema\": \"{SCHEMA}\")")
    rows: list[SweepRow] = []
    skipped: list[Skipped] = []
    for group in ("gemm", "attention", "elementwise"):
        for rec in data.get(group, []):
            try:
                if group == "gemm" and rec.get("op") == "scaled_mm":
                    key, graph = _scaled_mm_graph(rec)
                else:
                    key, fn, args = sweep_call(group, rec)
                    graph = canonicalize(capture(_module(fn), args)).graph
                measured_s = float(rec["median_ms"]) * 1e-3
            except (ValueError, KeyError, TypeError) as e:
                skipped.append(Skipped(f"{group} {rec.get('op', '')}".strip(), f"{type(e).__name__}: {e}"))
                continue
            rows.append(SweepRow(key, group, graph, measured_s, rec.get("dtype") == "tf32"))
    return rows, skipped
