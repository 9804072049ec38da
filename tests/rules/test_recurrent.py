"""rnn: RNN, GRU and LSTM layers: projections as matrix flops, the cell's gate arithmetic per hidden element."""

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, io, ops_in

S, B, I, H = 5, 2, 6, 4  # steps, batch, input size, hidden size


def layer(cell, gates, directions=1, bias=False, peepholes=False, layout=0):
    x = T(B, S, I) if layout else T(S, B, I)
    w, r = T(directions, gates * H, I), T(directions, gates * H, H)
    ins = [x, w, r, T(directions, 2 * gates * H) if bias else None, None, None,
           T(directions, 3 * H) if peepholes else None]
    while ins[-1] is None:
        ins.pop()
    outs = [T(S, directions, B, H), T(directions, B, H)]
    return ins, outs


def expected(ins, outs, gates, cell_flops, cell_trans, directions=1, bias=False):
    runs = S * directions * B
    matrix = 2 * runs * (I + H) * gates * H  # x_t @ W^T and h @ R^T
    vector = runs * ((1 + bias) * gates * H + cell_flops * H)
    return Cost(matrix + vector, matrix, runs * cell_trans * H, *io(ins, outs))


def rnn_case(cell, gates, cell_flops, cell_trans, id, directions=1, bias=False, peepholes=False, layout=0):
    ins, outs = layer(cell, gates, directions, bias, peepholes, layout)
    attrs = {"cell": cell, "layout": layout}
    return case("rnn", ins, outs, attrs, expected(ins, outs, gates, cell_flops, cell_trans, directions, bias), id)


CASES = [
    # lstm: 3 sigmoids (2 + exp each), tanh, c = f*c + i*g (3), h = o * tanh(c) (1 + tanh)
    rnn_case("lstm", 4, 3 * 2 + 3 + 1, 3 + 1 + 1, "lstm"),
    rnn_case("lstm", 4, 10, 5, "lstm-bias-bidirectional", directions=2, bias=True),
    rnn_case("lstm", 4, 10 + 6, 5, "lstm-peepholes", peepholes=True),  # p * c added to i, f, o
    rnn_case("lstm", 4, 10, 5, "lstm-batch-first", layout=1),
    # gru: 2 sigmoids, r * (R h), tanh, (1 - z) * h~ + z * h (4)
    rnn_case("gru", 3, 2 * 2 + 1 + 4, 2 + 1, "gru"),
    rnn_case("rnn", 1, 0, 1, "rnn-tanh", bias=True),
]

x, w, r = T(S, B, I), T(1, 4 * H, I), T(1, 4 * H, H)
ERRORS = [
    bad("rnn", [x, w, r], [T(S, 1, B, H)], {}, "cell=None", "no-cell"),
    bad("rnn", [x, w, r], [T(S, 1, B, H)], {"cell": "gru"}, "do not fit G=3", "wrong-gates"),
    bad("rnn", [x, w], [T(S, 1, B, H)], {"cell": "lstm"}, "missing required input 2", "no-r"),
]

COVERED_OPS = ops_in(CASES)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CASES)
def test_rnn(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_rnn_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
