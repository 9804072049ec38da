"""Cost rule for `rnn`: ONNX RNN, GRU and LSTM layers (all time steps, one or both directions).

Guarantees: the input and recurrent projections are matrix flops (2 per multiply-add, as a matmul);
the gate arithmetic per hidden element is counted from the cell's equations below, sigmoid and tanh
as in `graphperf.ops.ELEMENTWISE`; every time step of every sequence is counted (`sequence_lens`,
a run-time value, is not read); bytes are every input read once (x, the weights, biases and initial
states) and every output written once. Shapes that do not fit the ONNX layout raise `ValueError`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..cost import Cost
from ..errors import RuleError
from ..ir import TensorType
from ._common import operand, optional, out0, read_bytes, written_bytes
from .registry import register

__all__ = ["rnn_rule", "CELLS"]

# cell -> (gates G, flops per hidden element per step, transcendentals per hidden element per step),
# on top of the projections and of combining them (below).
#   lstm: i, f, o = sigmoid (2 flops + 1 exp each), g = tanh (1), c = f*c + i*g (3), h = o * tanh(c)
#         (1 + 1 tanh)                                                -> 6 + 3 + 1 = 10 flops, 3 + 1 + 1 = 5
#         peepholes (P given) add p * c to i, f and o: + 6 flops.
#   gru:  z, r = sigmoid (2 + 1 exp each), r applied to the recurrent candidate (1), h~ = tanh (1),
#         h = (1 - z) * h~ + z * h (4)                                 -> 4 + 1 + 4 = 9 flops, 2 + 1 = 3
#   rnn:  h = tanh(...)                                               -> 0 flops, 1
CELLS: dict[str, tuple[int, int, int]] = {"lstm": (4, 10, 5), "gru": (3, 9, 3), "rnn": (1, 0, 1)}


# Per direction and time step, with batch B, input size I, hidden size H, G gates:
#   input projection       x_t @ W^T:  2 * B * I * G*H   (matrix; runtimes batch it over all steps)
#   recurrent projection   h @ R^T:    2 * B * H * G*H   (matrix)
#   combining them:        1 add per gate element, + 1 for the bias (Wb + Rb folded once): B * G*H * (1 [+ 1])
#   the cell:              B * H * CELLS[cell] flops and transcendentals
# times S steps and D directions.
@register("rnn")
def rnn_rule(ins: Sequence[Optional[TensorType]], outs: Sequence[TensorType], attrs: Mapping[str, Any]) -> Cost:
    x = operand("rnn", ins, 0, "x")
    w = operand("rnn", ins, 1, "w")
    r = operand("rnn", ins, 2, "r")
    out0("rnn", outs)
    cell = attrs.get("cell")
    if cell not in CELLS:
        raise RuleError(f"rnn: attribute cell={cell!r} must be one of {sorted(CELLS)}")
    if x.rank != 3 or w.rank != 3 or r.rank != 3:
        raise RuleError(f"rnn: expected x [S, B, I], w [D, G*H, I], r [D, G*H, H]; got x {x}, w {w}, r {r}")
    gates, cell_flops, cell_trans = CELLS[cell]
    steps, batch = (x.shape[1], x.shape[0]) if attrs.get("layout") else (x.shape[0], x.shape[1])
    directions, gh, inputs = w.shape
    hidden = r.shape[2]
    if gh != gates * hidden or r.shape[:2] != (directions, gh) or inputs != x.shape[2]:
        raise RuleError(f"rnn: {cell} shapes do not fit G={gates} gates: x {x}, w {w}, r {r}")
    runs = steps * directions * batch  # (step, direction, sequence) triples
    matrix = 2 * runs * (inputs + hidden) * gh
    peepholes = 6 if cell == "lstm" and optional(ins, 6) is not None else 0
    combine = 1 + (1 if optional(ins, 3) is not None else 0)
    vector = runs * (combine * gh + (cell_flops + peepholes) * hidden)
    return Cost(matrix + vector, matrix, runs * cell_trans * hidden, read_bytes(ins), written_bytes(outs))
