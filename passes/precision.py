"""Precision rewrite: change the dtypes of weights, activations and the KV cache.

`rewrite_precision(graph, {"weights": "fp8", "activations": "bf16", "kv": "fp8"})` returns a new
`Graph` (the input is never mutated) whose floating-point values of the chosen classes carry the
new dtype. Nothing else changes: bytes follow from the dtypes when the graph is counted again,
and matrix peaks follow from `Target.matrix_peak_flops` routing at projection time.

Value classes (only floating-point values are rewritten; integer ids, masks and indices keep
their dtype):

- ``weights``: values of kind "weight" (parameters, buffers, constants).
- ``kv``: the KV cache, i.e. graph inputs (kind "input") of rank >= 4. In the reference decode
  workloads these are exactly the `past_key_values_*` tensors [B, kv_heads, kv_len, head_dim];
  prefill graphs have none.
- ``activations``: values of kind "activation" and the remaining float graph inputs.

`no_peak_nodes` lists the matrix nodes whose dtype has no matrix peak of its own on a target
(they run at a fallback peak or on the vector unit), so a what-if never hides that.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from graphperf.dtypes import DTYPE_BITS, SPELLINGS, is_float
from graphperf.errors import UsageError
from graphperf.ir import Graph, TensorType, Value
from graphperf.peaks import matrix_peak

from .result import PassResult, graph_pass

__all__ = ["PRECISION_CLASSES", "DTYPE_ALIASES", "PrecisionResult", "parse_precision", "rewrite_precision",
           "value_class", "no_peak_nodes"]

PRECISION_CLASSES = ("weights", "activations", "kv")

DTYPE_ALIASES = SPELLINGS  # the one table of short dtype spellings (graphperf/dtypes.py)
_FLOAT_TARGETS = sorted(d for d in DTYPE_BITS if is_float(d))


@dataclass(frozen=True, kw_only=True)
class PrecisionResult(PassResult):
    """The rewritten graph and, per value class, how many values were rewritten and their bytes before and after;
    a `PassResult` whose one record is ``to_dict(spec)``, `modified` when some value's dtype changed."""

    changed: dict[str, int]  # class -> values rewritten
    bytes_before: dict[str, int]  # class -> bytes of the rewritten values, before
    bytes_after: dict[str, int]
    spec: Mapping[str, str]  # class -> dtype, as asked

    def to_dict(self, spec: Mapping[str, str] | None = None) -> dict:
        """The rewrite record the what-if report lists, with `spec` (class -> dtype; default: the one asked)."""
        return _record(self.spec if spec is None else spec, self.changed, self.bytes_before, self.bytes_after)


def _record(spec: Mapping[str, str], changed: dict, before: dict, after: dict) -> dict:
    return {"rewrite": "precision", "spec": dict(spec), "values_changed": dict(changed),
            "bytes_before": dict(before), "bytes_after": dict(after)}


def parse_precision(text: str) -> dict[str, str]:
    """`"weights=fp8,kv=fp8"` -> {"weights": "float8_e4m3fn", "kv": "float8_e4m3fn"}; UsageError otherwise."""
    out: dict[str, str] = {}
    for item in (p.strip() for p in text.split(",")):
        cls, sep, raw = item.partition("=")
        if not sep or not cls or not raw:
            raise UsageError(f"--precision {item!r}: expected CLASS=DTYPE, e.g. --precision weights=fp8,kv=fp8")
        if cls not in PRECISION_CLASSES:
            raise UsageError(f"--precision {item!r}: unknown class {cls!r}; choose from "
                             + ", ".join(PRECISION_CLASSES))
        dtype = DTYPE_ALIASES.get(raw.lower(), raw)
        if dtype not in _FLOAT_TARGETS:
            raise UsageError(f"--precision {item!r}: unknown float dtype {raw!r}; use one of "
                             + ", ".join([*DTYPE_ALIASES, *_FLOAT_TARGETS]))
        out[cls] = dtype
    return out


def value_class(v: Value) -> str | None:
    """"weights", "kv" or "activations" for a float value; None for a value no class covers."""
    if v.type is None or not is_float(v.type.dtype):
        return None
    if v.kind == "weight":
        return "weights"
    if v.kind == "input" and v.type.rank >= 4:
        return "kv"
    return "activations"


@graph_pass("rewrite_precision")
def rewrite_precision(graph: Graph, spec: Mapping[str, str]) -> PrecisionResult:
    """A new graph whose floating-point values of each class in `spec` (class -> canonical dtype) carry that
    dtype; UsageError for an unknown class."""
    for cls in spec:
        if cls not in PRECISION_CLASSES:
            raise UsageError(f"precision class {cls!r} unknown; choose from " + ", ".join(PRECISION_CLASSES))
    values: dict[str, Value] = {}
    changed = {c: 0 for c in spec}
    before = {c: 0 for c in spec}
    after = {c: 0 for c in spec}
    modified = False
    for name, v in graph.values.items():
        cls = value_class(v)
        if cls in spec:
            t = TensorType(v.type.shape, spec[cls])
            changed[cls] += 1
            before[cls] += v.type.nbytes
            after[cls] += t.nbytes
            modified = modified or t != v.type
            v = replace(v, type=t)
        values[name] = v
    new = Graph(graph.name, list(graph.nodes), values, graph.outputs, dict(graph.meta))
    return PrecisionResult(new, modified, [_record(spec, changed, before, after)], changed=changed,
                           bytes_before=before, bytes_after=after, spec=dict(spec))


def no_peak_nodes(graph: Graph, counts, target) -> list[dict]:
    """Matrix nodes whose dtype has no matrix peak of its own on `target` (fallback or vector unit)."""
    out = []
    for nc in counts:
        if nc.cost is None or not nc.cost.matrix_flops:
            continue
        dtype = graph.node_dtype(nc.node)
        if not target.has_native_matrix_peak(dtype):
            peak = matrix_peak(target, dtype, "matmul")
            ran = "the vector unit" if peak.on_vector_unit else peak.field
            out.append({"node": nc.node.name, "op": str(nc.node.op), "dtype": dtype,
                        "reason": f"{target.name} has no {dtype} matrix peak; runs at {ran}"})
    return out
