"""Count the arithmetic in one iteration of a linalg op's body (its region's single block).

Guarantees (README "Counting conventions", applied to MLIR ops):

- One FLOP per arith op that computes a value: add, sub, mul, div, rem, neg, min/max, compare,
  select, and/or/xor, shifts (float and integer alike, as the graph level counts integer
  elementwise ops); ``math.fma`` is 2 (a multiply-add); ``math.absf``, ``floor``, ``ceil``,
  ``round``, ``copysign`` are 1.
- Transcendentals (math.exp, log, erf, tanh, sqrt, rsqrt, sin, cos, powf, ...) are counted apart.
  ``math.fpowi``/``ipowi`` with a constant integer exponent e is max(|e| - 1, 1) multiplies, plus
  a divide when e < 0 (the graph level's `pow` with an integer exponent); with a variable
  exponent it is one transcendental.
- ``select(cmp(a, b), a, b)`` is one max/min (1 FLOP, as the graph level counts relu and clamp),
  not a compare plus a select.
- ``exp(-x)`` is one transcendental: a negation used only by ``math.exp`` is folded into it
  (the graph level's sigmoid and silu conventions).
- Address arithmetic is not counted: ops that only compute the indices of a ``tensor.extract``
  (index casts, negative-index wrapping of a gather).
- Dead code is not counted: body ops whose values reach only unused results (the argmax that
  torch-mlir's softmax computes beside the max) or runtime checks (``cf.assert``).
- Free: constants, casts (extf, truncf, index_cast, sitofp, bitcast, ...), ``linalg.index``,
  ``linalg.yield``, and
  ``tensor.extract`` (a load; its bytes are counted by the caller as a gathered read).
- An op in none of these lists is *unknown*: `BodyCount.unknown` names it, and the caller reports
  the linalg op as unknown instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

__all__ = ["BodyCount", "count_body", "FLOP_OPS", "TRANSCENDENTAL_OPS", "FREE_OPS"]

FLOP_OPS: dict[str, int] = {name: 1 for name in (
    "arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.remf", "arith.negf",
    "arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf", "arith.cmpf", "arith.select",
    "arith.addi", "arith.subi", "arith.muli", "arith.divsi", "arith.divui", "arith.remsi", "arith.remui",
    "arith.ceildivsi", "arith.ceildivui", "arith.floordivsi", "arith.cmpi",
    "arith.maxsi", "arith.minsi", "arith.maxui", "arith.minui", "arith.andi", "arith.ori", "arith.xori",
    "arith.shli", "arith.shrsi", "arith.shrui",
    "math.absf", "math.absi", "math.floor", "math.ceil", "math.round", "math.roundeven", "math.trunc",
    "math.copysign",
)}
FLOP_OPS["math.fma"] = 2

TRANSCENDENTAL_OPS = frozenset((
    "math.exp", "math.exp2", "math.expm1", "math.log", "math.log1p", "math.log2", "math.log10",
    "math.erf", "math.erfc", "math.tanh", "math.sqrt", "math.rsqrt", "math.cbrt", "math.sin", "math.cos",
    "math.tan", "math.asin", "math.acos", "math.atan", "math.atan2", "math.sinh", "math.cosh",
    "math.asinh", "math.acosh", "math.atanh", "math.powf",
))

FREE_OPS = frozenset((
    "arith.constant", "arith.extf", "arith.truncf", "arith.extsi", "arith.extui", "arith.trunci",
    "arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.fptoui", "arith.index_cast", "arith.index_castui",
    "arith.bitcast", "linalg.index", "linalg.yield", "cf.assert", "tensor.extract",
))

_POW = ("math.fpowi", "math.ipowi")


@dataclass
class BodyCount:
    """Per-iteration figures of one body."""

    flops: int = 0
    transcendentals: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)  # body op name -> occurrences
    extracts: list[Any] = field(default_factory=list)  # tensors read by tensor.extract from outside
    unknown: list[str] = field(default_factory=list)
    reads_block_args: set[int] = field(default_factory=set)  # block-argument positions the body uses

    @property
    def empty(self) -> bool:
        return not self.op_counts or all(n in FREE_OPS for n in self.op_counts)


def _const_int(value) -> Any:
    owner = value.owner
    name = getattr(owner, "name", "")
    if name != "arith.constant":
        return None
    text = str(owner.attributes["value"])  # e.g. "2 : i64"
    try:
        return int(text.split(":")[0].strip())
    except ValueError:
        return None


def _live_ops(ops: list, live_results: Optional[Sequence[bool]], through_extract_indices: bool = True) -> set[int]:
    """Indices of the body ops whose values reach a live yield operand (dead code is not counted).

    With `through_extract_indices` False, the index operands of ``tensor.extract`` do not make
    their producers live: the ops that only compute a load address.
    """
    index = {}
    for i, op in enumerate(ops):
        for r in op.results:
            index[r] = i
    live: set[int] = set()
    stack = []
    terminator = ops[-1] if ops else None
    if terminator is not None and terminator.operation.name == "linalg.yield":
        live.add(len(ops) - 1)
        for j, v in enumerate(terminator.operands):
            if live_results is None or j >= len(live_results) or live_results[j]:
                if v in index:
                    stack.append(index[v])
    while stack:
        i = stack.pop()
        if i in live:
            continue
        live.add(i)
        operands = list(ops[i].operands)
        if not through_extract_indices and ops[i].operation.name == "tensor.extract":
            operands = operands[:1]
        for v in operands:
            if v in index:
                stack.append(index[v])
    return live


def _only_used_by(op, user: str) -> bool:
    uses = [use.owner for r in op.results for use in r.uses]
    return bool(uses) and all(u.operation.name == user for u in uses)


def _is_max_or_min(op, ops: list, index: dict) -> bool:
    """select(cmpf(a, b), a, b) or select(cmpf(a, b), b, a): one max or min, not a compare and a select."""
    cond, x, y = list(op.operands)
    owner = index.get(cond)
    if owner is None or ops[owner].operation.name not in ("arith.cmpf", "arith.cmpi"):
        return False
    a, b = list(ops[owner].operands)
    return (x == a and y == b) or (x == b and y == a)


def count_body(block, live_results: Optional[Sequence[bool]] = None) -> BodyCount:
    """Count `block` (a linalg op's region block); see the module docstring.

    `live_results[j]` False: the op's j-th result is never used, and the body ops that only
    compute it are dead code (torch-mlir's softmax computes an unused argmax beside the max).
    """
    out = BodyCount()
    args = list(block.arguments)
    ops = list(block.operations)
    live = _live_ops(ops, live_results)
    computing = _live_ops(ops, live_results, through_extract_indices=False)
    index = {r: i for i, op in enumerate(ops) for r in op.results}
    folded: set[int] = set()
    for i, op in enumerate(ops):
        name = op.operation.name
        if i in live and name == "arith.select" and _is_max_or_min(op, ops, index):
            folded.add(index[op.operands[0]])
        if name == "arith.negf" and _only_used_by(op, "math.exp"):
            folded.add(i)  # exp(-x): one transcendental, the negation folded (graph level: sigmoid, silu)
    for i, op in enumerate(ops):
        name = op.operation.name
        out.op_counts[name] = out.op_counts.get(name, 0) + 1
        if i not in live:
            continue
        for operand in op.operands:
            for k, arg in enumerate(args):
                if operand == arg:
                    out.reads_block_args.add(k)
        if i not in computing or (i in folded and len(list(op.results[0].uses)) == 1):
            continue
        if name in FREE_OPS:
            if name == "tensor.extract":
                out.extracts.append(op.operands[0])
            continue
        if name in FLOP_OPS:
            out.flops += FLOP_OPS[name]
        elif name in TRANSCENDENTAL_OPS:
            out.transcendentals += 1
        elif name in _POW:
            e = _const_int(op.operands[1])
            if e is None:
                out.transcendentals += 1
            else:
                out.flops += max(abs(e) - 1, 1) + (1 if e < 0 else 0)
        else:
            out.unknown.append(name)
    return out
