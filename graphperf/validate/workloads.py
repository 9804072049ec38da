"""Turn one measurement record into a workload graph and its measured time, or say why not.

`build_case(record)` returns a `Case` (graph, measured seconds, target settings, note) or a
`Skip` (reason). Measured time is derived from the record's own metric and FLOP/byte convention:

- gemm / cpu GEMM, achieved TFLOP/s or GFLOP/s: time = 2*B*M*N*K / value (the records' convention).
  f32 records run TF32 (``allow_tf32``) where the record's dtype or notes say TF32 ran.
- attention, FlashAttention-2 fwd+bwd TFLOP/s (PyTorch's unfused attention is skipped): time = 3.5 * 4*B*S^2*H*d / value (halved when causal),
  the benchmark's own FLOP count; the graph is one attention node and its attention_backward.
- elementwise_norm, Gelements/s: time = elements / value; softmax and layernorm over rows of N,
  GELU over a flat tensor (one node each).
- memory_bandwidth / cpu STREAM kernels, GB/s or TB/s: time = bytes the kernel moves / value,
  bytes = (arrays read + arrays written) * elements * 8 (double) as STREAM/BabelStream count them.
  Array size: the record's, else BabelStream's default 2^25 elements.
- llm_inference, batch-1 single-device bf16 decode tokens/s: time per step = batch / value; the
  graph is one decode step of the matching models/ workload (kv_len = the prompt length, else 128).
Everything else is skipped with the reason (serving benchmarks that mix prefill, decode and
scheduling; quantized weights graphperf has no dtype for; tensor parallelism; per-op shards).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical

__all__ = ["Case", "Skip", "build_case", "gemm_dtype"]


@dataclass
class Case:
    graph: Graph
    measured_s: float
    sets: Mapping[str, str] = field(default_factory=dict)  # target overrides (allow_tf32)
    note: str = ""


@dataclass
class Skip:
    reason: str


def _graph(name: str, op: str, ins: list[TensorType], outs: list[TensorType], attrs=None) -> Graph:
    values = {f"in{k}": Value(f"in{k}", t, "input") for k, t in enumerate(ins)}
    values.update({f"out{k}": Value(f"out{k}", t, producer=op) for k, t in enumerate(outs)})
    node = Node(op, canonical(op), op, tuple(f"in{k}" for k in range(len(ins))),
                tuple(f"out{k}" for k in range(len(outs))), attrs or {})
    return Graph(name, [node], values, tuple(f"out{k}" for k in range(len(outs))))


def gemm_dtype(text: str) -> Optional[str]:
    t = (text or "").lower()
    for keys, dtype in ((("bf16", "bfloat16"), "bfloat16"), (("fp16", "f16", "half", "float16"), "float16"),
                        (("fp8", "e4m3", "f8"), "float8_e4m3fn"), (("int8",), "int8"),
                        (("tf32", "fp32", "f32", "float32"), "float32"),
                        (("fp64", "f64", "double", "float64"), "float64")):
        if any(k in t for k in keys):
            return dtype
    return None


def _gemm(rec: dict) -> Union[Case, Skip]:
    p = rec["params"]
    dims = [p.get(k) for k in ("M", "N", "K")]
    note = ""
    if not all(isinstance(d, int) for d in dims):
        shape = str(p.get("best_shape_MxNxK_as_labelled", ""))
        m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", shape)
        if not m:
            return Skip("no integer M, N, K in params")
        dims, note = [int(g) for g in m.groups()], "best-of-scan shape (dimension order ambiguous; FLOPs are not)"
    b = p.get("B", 1)
    dtype = gemm_dtype(str(p.get("dtype", p.get("dtype_isa", ""))))
    if dtype is None:
        return Skip(f"dtype {p.get('dtype')!r} not understood")
    scale = {"TFLOP/s": 1e12, "GFLOP/s": 1e9}.get(rec["unit"])
    if scale is None:
        return Skip(f"unit {rec['unit']!r} is not a FLOP rate")
    m, n, k = dims
    lead = (b,) if b > 1 else ()
    graph = _graph(rec["id"], "matmul", [TensorType((*lead, m, k), dtype), TensorType((*lead, k, n), dtype)],
                   [TensorType((*lead, m, n), dtype)])
    tf32 = "tf32" in str(p.get("dtype", "")).lower() or "TF32 tensor cores" in rec.get("notes", "")
    return Case(graph, 2 * b * m * n * k / (rec["value"] * scale), {"allow_tf32": "true"} if tf32 else {}, note)


def _attention(rec: dict) -> Union[Case, Skip]:
    p = rec["params"]
    if not rec["workload"].startswith("FlashAttention"):
        return Skip(f"{rec['workload'].split(',')[0]}: an unfused chain of ATen kernels forward and backward; "
                    "only the fused FlashAttention kernels are rebuilt")
    if p.get("pass") != "fwd+bwd" or rec["unit"] != "TFLOP/s":
        return Skip(f"pass {p.get('pass')!r} (only FlashAttention fwd+bwd TFLOP/s records are modelled)")
    b, s, h, d = p["batch"], p["seqlen"], p.get("n_heads"), p["head_dim"]
    if not isinstance(h, int):
        return Skip("number of heads not stated")
    dtype = "bfloat16"  # "fp16/bf16": same width and peak on every target
    causal = bool(p.get("causal"))
    qkv = TensorType((b, h, s, d), dtype)
    lse = TensorType((b, h, s), "float32")
    values = {n: Value(n, qkv, "input") for n in ("q", "k", "v", "grad")}
    values["out"] = Value("out", qkv, producer="fwd")
    values["lse"] = Value("lse", lse, "input")
    for n in ("dq", "dk", "dv"):
        values[n] = Value(n, qkv, producer="bwd")
    nodes = [Node("fwd", canonical("attention"), "attention", ("q", "k", "v"), ("out",), {"is_causal": causal}),
             Node("bwd", canonical("attention_backward"), "attention_backward",
                  ("grad", "q", "k", "v", "out", "lse"), ("dq", "dk", "dv"), {"is_causal": causal})]
    graph = Graph(rec["id"], nodes, values, ("dq", "dk", "dv"))
    flops = 3.5 * 4 * b * s * s * h * d / (2 if causal else 1)
    return Case(graph, flops / (rec["value"] * 1e12), {}, "fp16/bf16 projected as bf16")


def _elementwise(rec: dict) -> Union[Case, Skip]:
    p = rec["params"]
    dtype = gemm_dtype(p.get("dtype", ""))
    kind = rec["workload"].split()[0].lower()
    if rec["unit"] != "Gelements/s" or dtype is None:
        return Skip(f"unit {rec['unit']!r} / dtype {p['dtype']!r} not modelled" if p.get("dtype")
                    else f"unit {rec['unit']!r} with no dtype in the params not modelled")
    if kind in ("softmax", "layernorm") and isinstance(p.get("M"), int):
        x = TensorType((p["M"], p["N"]), dtype)
        if kind == "softmax":
            graph = _graph(rec["id"], "softmax", [x], [x], {"axis": -1})
        else:
            w = TensorType((p["N"],), dtype)
            graph = _graph(rec["id"], "layer_norm", [x, w, w], [x], {"norm_numel": p["N"]})
        elements = p["M"] * p["N"]
    elif kind == "gelu" and isinstance(p.get("elements"), int):
        x = TensorType((p["elements"],), dtype)
        graph, elements = _graph(rec["id"], "gelu", [x], [x]), p["elements"]
    else:
        return Skip(f"workload {rec['workload']!r} not modelled")
    return Case(graph, elements / (rec["value"] * 1e9), {}, "")


# STREAM-style kernels: (arrays read, arrays written) and the op that moves them.
_STREAM = {"init": (0, 1, "fill"), "read": (1, 0, "reduce_sum"), "copy": (1, 1, "copy"), "scale": (1, 1, "mul"),
           "mul": (1, 1, "mul"), "add": (2, 1, "add"), "triad": (2, 1, "add"), "dot": (2, 0, "einsum")}
_BABELSTREAM_ELEMS = 2 ** 25


def _stream(rec: dict) -> Union[Case, Skip]:
    p = rec["params"]
    kind = str(p.get("kernel", "")).lower()
    if kind not in _STREAM:
        return Skip(f"kernel {p['kernel']!r} not modelled" if p.get("kernel") else "no kernel named in the params")
    scale = {"GB/s": 1e9, "TB/s": 1e12}.get(rec["unit"])
    if scale is None:
        return Skip(f"unit {rec['unit']!r} is not a bandwidth")
    elems, note = _BABELSTREAM_ELEMS, "array size not stated: BabelStream's default 2^25 doubles"
    m = re.match(r"(\d+)\s*Mi", str(p.get("array_elems", "")))
    if m:
        elems, note = int(m.group(1)) * 2 ** 20, ""
    reads, writes, op = _STREAM[kind]
    x, scalar = TensorType((elems,), "float64"), TensorType((), "float64")
    outs = [x] if writes else [scalar]
    graph = _graph(rec["id"], op, [x] * reads, outs, {"equation": "i,i->"} if op == "einsum" else {})
    return Case(graph, (reads + writes) * elems * 8 / (rec["value"] * scale), {}, note)


_LLMS = ((r"llama[- ]?2[- ]7b", "llama2-7b"), (r"llama[- ]?3(\.1)?[- ]8b", "llama3-8b"),
         (r"llama[- ]?3(\.1)?[- ]70b", "llama3-70b"), (r"llama[- ]?3(\.1)?[- ]405b", "llama3-405b"))


def _llm(rec: dict) -> Union[Case, Skip]:
    p = rec["params"]
    if rec["metric"] != "decode_throughput" or rec["unit"] != "tokens/s":
        return Skip(f"{rec['metric']}: a serving benchmark (prefill, decode and scheduling mixed), not one step")
    if p.get("tensor_parallel", 1) != 1:
        return Skip(f"tensor parallel {p.get('tensor_parallel')}: graphperf projects one device")
    weights = str(p.get("weights", p.get("dtype", ""))).lower()
    if not weights.startswith("bf16") and "bfloat16" not in weights:
        return Skip(f"weights {p.get('weights')!r}: only bf16 decode is modelled (no int4/int8 weight-only dtype)")
    name = str(p.get("model", "")).lower().replace("meta-llama-", "llama-").replace("meta-", "")
    ref = next((r for pat, r in _LLMS if re.search(pat, name)), None)
    batch = p.get("batch")
    if ref is None or not isinstance(batch, int):
        return Skip(f"model {p.get('model')!r} (batch {batch!r}) has no models/ workload")
    kv_len = p.get("prompt_len") or 128
    graph = _decode_graph(ref, batch, kv_len)
    return Case(graph, batch / rec["value"], {}, f"{ref} decode step, batch {batch}, kv_len {kv_len}")


@functools.lru_cache(maxsize=8)
def _decode_graph(ref: str, batch: int, kv_len: int) -> Graph:
    from graphperf.pipeline import ModelRequest, load_graph

    graph, _ = load_graph(ModelRequest(ref, phase="decode", batch=batch, kv_len=kv_len, dtype="bfloat16"))
    return graph


_REQUIRED = {"id": str, "params": dict, "unit": str, "value": (int, float), "workload": str, "metric": str}


def build_case(rec: Mapping[str, Any]) -> Union[Case, Skip]:
    """The workload and measured time of one record (see the module docstring); a record missing a field
    or with a non-positive value is a `Skip` naming what is wrong, never an exception."""
    bad = [k for k, t in _REQUIRED.items() if not isinstance(rec.get(k), t) or isinstance(rec.get(k), bool)]
    if bad:
        return Skip("malformed record: " + ", ".join(f"{k} missing or of the wrong type" for k in bad))
    if not rec["value"] > 0:
        return Skip(f"malformed record: value {rec['value']!r} is not positive")
    try:
        return _build(rec)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        return Skip(f"malformed record: {type(exc).__name__}: {exc}")


def _build(rec: Mapping[str, Any]) -> Union[Case, Skip]:
    cat = rec["category"]
    if cat == "gemm" or (cat == "cpu" and rec["unit"] == "GFLOP/s"):
        return _gemm(dict(rec))
    if cat == "attention":
        return _attention(dict(rec))
    if cat == "elementwise_norm":
        return _elementwise(dict(rec))
    if cat == "memory_bandwidth" or (cat == "cpu" and rec["metric"] == "bandwidth"):
        return _stream(dict(rec))
    if cat == "llm_inference":
        return _llm(dict(rec))
    return Skip(f"category {cat!r} not modelled")
