"""The optimizer step of a training step: AdamW as one memory-bound elementwise pass over the parameters.

Per parameter element, torch.optim.AdamW (``fused=True``: one horizontally fused kernel over every parameter;
the single-tensor algorithm does the same arithmetic) reads the parameter p, its gradient g and the two moment
estimates m and v, and writes p, m and v back::

    p = p * (1 - lr * wd)                          1 mul                     (decoupled weight decay)
    m = m + (1 - beta1) * (g - m)                  3 (sub, mul, add)         (lerp)
    v = beta2 * v + (1 - beta2) * g * g            4 (mul, mul, mul, add)    (mul_, addcmul_)
    d = sqrt(v) / sqrt(bias_correction2) + eps     2 (div, add) + 1 sqrt     (a transcendental)
    p = p - step_size * m / d                      3 (div, mul, add)         (addcdiv_)

so 13 FLOPs and 1 transcendental per element. Bytes per element: p and g in the training dtype (a 2-byte dtype
for bf16 training), m and v in float32 (PyTorch keeps the states in the parameter's dtype; mixed-precision
recipes keep them in fp32, which this module assumes):

    read  p + g + m + v  = 2 * itemsize + 8        written  p + m + v = itemsize + 8
    total 3 * itemsize + 16 bytes: 22 for bf16 parameters, 28 for fp32

The pass is priced like any fused elementwise kernel graphperf projects (a ``fused`` node carrying those FLOPs,
its external inputs read once and outputs written once: graphperf/rules/fused.py), one node per dtype; it is
memory-bound on every bundled target. Parameters without a gradient are not updated. Not modelled: fp32 master
weights (a bf16 recipe with master weights reads and writes 4 more bytes of p per element), the gradient-norm
clipping pass. Under ZeRO (graphperf/train/zero.py) the same pass runs over one device's shard of the
parameters.
"""

from __future__ import annotations

from typing import Sequence

from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical

__all__ = ["ADAMW_FLOPS_PER_PARAMETER", "ADAMW_TRANSCENDENTALS_PER_PARAMETER", "STATE_DTYPE", "adamw_bytes",
           "adamw_graph"]

ADAMW_FLOPS_PER_PARAMETER = 13
ADAMW_TRANSCENDENTALS_PER_PARAMETER = 1
#: The dtype of AdamW's moment estimates m and v.
STATE_DTYPE = "float32"


def adamw_bytes(param_itemsize: int, grad_itemsize: int, state_itemsize: int = 4) -> tuple[int, int]:
    """(bytes read, bytes written) per parameter element: read p, g, m, v; write p, m, v.

    >>> adamw_bytes(2, 2), sum(adamw_bytes(4, 4))
    ((12, 10), 28)
    """
    return param_itemsize + grad_itemsize + 2 * state_itemsize, param_itemsize + 2 * state_itemsize


def adamw_graph(parameters: Sequence, name: str = "adamw") -> Graph:
    """The optimizer step over `parameters` (objects with ``numel``, ``dtype`` and ``gradient``: the parameters of
    graphperf/train/capture.py) as a graph of one fused elementwise node per dtype.

    >>> from graphperf.train.capture import Parameter
    >>> g = adamw_graph([Parameter("w", 1000, "bfloat16", 2000, "g_w"), Parameter("b", 24, "bfloat16", 48, "g_b")])
    >>> [(n.name, n.attrs["cost"]["flops"]) for n in g], sum(v.type.nbytes for v in g.values.values())
    ([('adamw_bfloat16', 13312)], 22528)
    """
    numel: dict[str, int] = {}
    for p in parameters:
        if p.gradient is not None:
            numel[p.dtype] = numel.get(p.dtype, 0) + p.numel
    values: dict[str, Value] = {}
    nodes, outputs = [], []
    for dtype, n in sorted(numel.items()):
        p, s = TensorType((n,), dtype), TensorType((n,), STATE_DTYPE)
        ins = {f"param.{dtype}": p, f"grad.{dtype}": p, f"exp_avg.{dtype}": s, f"exp_avg_sq.{dtype}": s}
        outs = {f"param.{dtype}.new": p, f"exp_avg.{dtype}.new": s, f"exp_avg_sq.{dtype}.new": s}
        node = f"{name}_{dtype}"
        values.update({k: Value(k, t, "weight" if k.startswith("param") else "input") for k, t in ins.items()})
        values.update({k: Value(k, t, "activation", node) for k, t in outs.items()})
        cost = {"flops": ADAMW_FLOPS_PER_PARAMETER * n, "matrix_flops": 0,
                "transcendentals": ADAMW_TRANSCENDENTALS_PER_PARAMETER * n}
        nodes.append(Node(node, canonical("fused"), "torch.optim.AdamW(fused=True)", tuple(ins), tuple(outs),
                          {"cost": cost, "kernel": "adamw"}, "optimizer"))
        outputs += list(outs)
    return Graph(name, nodes, values, outputs, {"parameter_count": sum(numel.values())})
