"""Pointwise ATen ops derived from torch's metadata: every overload tagged ``torch.Tag.pointwise``.

Guarantees: `pointwise_alias(overload)` returns an `AtenAlias` for every op tagged pointwise that the
hand table (`aten_ops.ALIASES`) does not name:
- the canonical elementwise op where one is the same function under another name
  (`SAME_AS`: ``clip`` is ``clamp``, ``__xor__`` is ``bitwise_xor``, ``softshrink`` is ``shrink``);
- otherwise the generic canonical op ``pointwise`` with per-output-element counts: `COSTS` where the
  op is more than one operation (each entry with its derivation), else the arity default
  `default_cost`: ``max(1, tensor operands - 1)`` FLOPs and no transcendental (a unary or binary op
  is one operation, a ternary one such as ``where`` two). Bytes come from each operand's own dtype
  and size, as for every elementwise rule.
A function evaluated by a series (the ``special_*`` family, gamma functions, Bessel functions) counts
as one transcendental per element, as ``erf`` does: a lower bound, as for every transcendental.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

import torch

from ..ops import CANONICAL
from .aten_alias import AtenAlias

__all__ = ["SAME_AS", "COSTS", "default_cost", "tensor_arity", "pointwise_alias"]

aten = torch.ops.aten

# aten name -> canonical elementwise op computing the same function
SAME_AS: dict[str, str] = {
    **{n: n for n in ("acos", "asin", "atan", "sinh", "cosh", "tan", "asinh", "acosh", "atanh", "elu", "selu",
                      "celu", "hardsigmoid", "hardswish", "softplus", "mish")},
    "arccos": "acos", "arcsin": "asin", "arctan": "atan", "arcsinh": "asinh", "arccosh": "acosh",
    "arctanh": "atanh", "clip": "clamp", "fmax": "maximum", "fmin": "minimum", "sgn": "sign",
    "absolute": "abs", "negative": "neg", "multiply": "mul", "divide": "div", "subtract": "sub",
    "greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le", "not_equal": "ne",
    "__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor", "bitwise_xor": "bitwise_xor",
    "__lshift__": "bitwise_shift", "__rshift__": "bitwise_shift", "bitwise_left_shift": "bitwise_shift",
    "bitwise_right_shift": "bitwise_shift",
    "softshrink": "shrink", "hardshrink": "shrink",  # compare-selects and an add/sub, as ONNX Shrink
    "threshold": "thresholded_relu",  # x > t ? x : value: one compare-select
    "relu6": "hardtanh",  # clamp(x, 0, 6)
    "isposinf": "isinf", "isneginf": "isinf",
    "special_expit": "sigmoid", "special_erf": "erf",
}

# aten name -> (flops, transcendentals) per output element, for ops that are more than one operation
COSTS: dict[str, tuple[int, int]] = {
    "log10": (1, 1), "log2": (1, 1),       # log(x) * (1 / ln b)
    "log1p": (0, 1), "expm1": (0, 1), "exp2": (0, 1), "erfc": (0, 1), "erfinv": (0, 1),  # one libm call
    "atan2": (0, 1), "arctan2": (0, 1),
    "angle": (0, 1),                        # atan2(imag, real)
    "lgamma": (0, 1), "digamma": (0, 1), "polygamma": (0, 1), "mvlgamma": (0, 1), "i0": (0, 1),
    "igamma": (0, 1), "igammac": (0, 1),    # series: one transcendental (lower bound)
    "hypot": (3, 1),                        # sqrt(a*a + b*b): 2 mul, add + sqrt
    "sinc": (2, 1),                         # sin(pi x) / (pi x): mul, div + sin
    "logit": (2, 1),                        # log(x / (1 - x)): sub, div + log
    "xlogy": (2, 1), "special_xlogy": (2, 1), "special_xlog1py": (2, 1),  # x * log(y), select at x == 0
    "special_entr": (3, 1),                 # -x * log(x), selects at x == 0 and x < 0
    "logaddexp": (4, 2), "logaddexp2": (4, 2),  # max(a, b) + log1p(exp(-|a - b|)): max, sub, abs, add + exp, log1p
    "addcmul": (3, 0), "addcdiv": (3, 0),   # self + value * (t1 * t2) or (t1 / t2): mul or div, mul, add
    "lerp": (3, 0),                         # a + w * (b - a): sub, mul, add
    "frac": (2, 0),                         # x - trunc(x)
    "nan_to_num": (3, 0),                   # isnan, isinf, select
    "ldexp": (1, 1),                        # x * exp2(e)
    "frexp": (2, 0),                        # exponent and mantissa: bit extraction, scale
    "float_power": (0, 1),                  # pow in float64: exp(y * log x)
    "logit_backward": (3, 0),               # g / (x * (1 - x)): sub, mul, div
    "gcd": (1, 0), "lcm": (3, 0),           # integer Euclid (a lower bound: it loops); lcm = a / gcd * b
}
for _name in dir(aten):
    if _name.startswith("special_") and _name not in SAME_AS and _name not in COSTS:
        COSTS[_name] = (0, 1)  # the special-function namespace: one series evaluation per element


def _is_tensor(t: Any) -> bool:
    if isinstance(t, torch.OptionalType):
        t = t.getElementType()
    return isinstance(t, torch.TensorType)


def tensor_arity(overload: Any) -> int:
    """Tensor operands of `overload` (out= arguments excluded)."""
    return sum(1 for a in overload._schema.arguments if _is_tensor(a.type) and not a.is_out)


def default_cost(overload: Any) -> tuple[int, int]:
    """The arity default: max(1, tensor operands - 1) flops, no transcendental."""
    return max(1, tensor_arity(overload) - 1), 0


def _name(overload: Any) -> str:
    return overload.overloadpacket.__name__


@lru_cache(maxsize=None)
def pointwise_alias(overload: Any) -> Optional[AtenAlias]:
    """The alias of a pointwise-tagged ATen overload; None for an op not tagged pointwise."""
    if torch.Tag.pointwise not in getattr(overload, "tags", ()):
        return None
    name = _name(overload)
    canon = SAME_AS.get(name)
    if canon is not None:
        if canon not in CANONICAL:
            raise RuntimeError(f"aten.{name} maps to {canon!r}, which graphperf/ops.py does not define")
        return AtenAlias(canon)
    flops, trans = COSTS.get(name) or default_cost(overload)
    return AtenAlias("pointwise", None, lambda b, i, o, f=flops, t=trans: {
        "flops_per_element": f, "transcendentals_per_element": t})
