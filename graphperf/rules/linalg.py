"""Cost rule for `linalg`: one rule for every linalg structured op (named or generic).

A frontend that lowers to MLIR linalg-on-tensors (graphperf/mlir/) describes each op by its
iteration domain and its body instead of an op-specific formula. Attributes:

- ``domain``: the iteration-domain sizes (loop bounds), one int per loop (an empty tuple is one point);
- ``flops_per_point`` / ``transcendentals_per_point``: the body's arithmetic per iteration
  (graphperf/mlir/body.py: a multiply-add is 2 FLOPs, transcendentals apart);
- ``matrix``: True for contractions (matmul, batch matmul, convolution, einsum-like generics);
  their FLOPs are all `matrix_flops`;
- ``reads``: elements read from each node input, in input order: the footprint of the operand's
  indexing map on the domain (a broadcast operand is read once, at its own size);
- ``writes`` (optional): elements written per output; default, the whole output.
- ``graph_level_cost`` (optional): for an op torch-mlir did not lower, the figures of its graph
  node from the graph-level rules (graphperf/mlir/analyze.py), used as they are;
- ``unknown_body`` (optional): body ops with no counting convention; the rule refuses the node
  (it is reported as unknown, never as zero).

Guarantees: flops = prod(domain) x flops_per_point, transcendentals likewise; bytes are the
footprints at each operand's element size, each read once, each output written once.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..dtypes import itemsize_bits
from ..errors import RuleError
from ..ir import TensorType
from .registry import register

__all__ = ["linalg_rule"]

_FIGURES = ("flops", "matrix_flops", "transcendentals", "bytes_read", "bytes_written")


def _counts(attrs: Mapping[str, Any], key: str, n: int) -> tuple[int, ...]:
    value = attrs.get(key)
    if not isinstance(value, (tuple, list)) or len(value) != n or any(
            not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in value):
        raise RuleError(f"linalg: attribute {key}={value!r} must hold {n} non-negative ints")
    return tuple(value)


def _bytes(elems: Sequence[int], types: Sequence[Optional[TensorType]]) -> int:
    return sum((e * itemsize_bits(t.dtype) + 7) // 8 for e, t in zip(elems, types) if t is not None)


@register("linalg")
def linalg_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    fixed = attrs.get("graph_level_cost")
    if fixed is not None:  # an op that did not lower: its graph node's cost from the graph-level rules
        try:
            return Cost(**{k: fixed[k] for k in _FIGURES})
        except (KeyError, TypeError) as exc:
            raise RuleError(f"linalg: graph_level_cost={fixed!r} needs {', '.join(_FIGURES)}") from exc
    unknown = attrs.get("unknown_body")
    if unknown:
        raise RuleError(f"linalg: body op(s) {', '.join(unknown)} have no counting convention")
    if not outs:
        raise RuleError("linalg: node has no output type")
    domain = attrs.get("domain")
    if not isinstance(domain, (tuple, list)) or any(not isinstance(d, int) or d < 0 for d in domain):
        raise RuleError(f"linalg: attribute domain={domain!r} must be a tuple of loop sizes")
    points = math.prod(domain)
    fpp, tpp = attrs.get("flops_per_point"), attrs.get("transcendentals_per_point")
    for key, v in (("flops_per_point", fpp), ("transcendentals_per_point", tpp)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise RuleError(f"linalg: attribute {key}={v!r} must be a non-negative int")
    reads = _counts(attrs, "reads", len(ins))
    writes = _counts(attrs, "writes", len(outs)) if "writes" in attrs else tuple(t.numel for t in outs)
    flops = points * fpp
    return Cost(flops, flops if attrs.get("matrix") else 0, points * tpp, _bytes(reads, ins), _bytes(writes, outs))
