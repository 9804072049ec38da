"""gather reads only what it gathers; scatter reads and writes the full tensors."""

import pytest

from graphperf.cost import Cost

from ._util import BF16, F32, T, bad, case, check_cases, check_errors, io, ops_in

vocab, hidden, b, s = 128_000, 64, 2, 8
table = T(vocab, hidden, dtype="bfloat16")
tokens = T(b, s, dtype="int64")
emb = T(b, s, hidden, dtype="bfloat16")
r, c, k = 10, 4, 6
data, idx, upd = T(r, c), T(k, c, dtype="int64"), T(k, c)

GATHER = [
    # embedding: the indices plus b*s rows of the table, never the whole table
    case("gather", [table, tokens], [emb], {},
         Cost(0, 0, 0, 8 * b * s + BF16 * b * s * hidden, BF16 * b * s * hidden), "embedding"),
    case("gather", [data, T(k, dtype="int32")], [T(k, c)], {},
         Cost(0, 0, 0, 4 * k + F32 * k * c, F32 * k * c), "index-select"),
    case("gather", [data, T(3, 2, dtype="int64")], [T(3)], {},
         Cost(0, 0, 0, 8 * 3 * 2 + F32 * 3, F32 * 3), "gather-nd"),
]

SCATTER = [
    case("scatter", [data, idx, upd], [data], {}, Cost(0, 0, 0, *io([data, idx, upd], [data])), "default-none"),
    case("scatter", [data, idx, upd], [data], {"reduce": "none"}, Cost(0, 0, 0, *io([data, idx, upd], [data])), "none"),
] + [
    case("scatter", [data, idx, upd], [data], {"reduce": red}, Cost(k * c, 0, 0, *io([data, idx, upd], [data])), red)
    for red in ("add", "mul", "max", "min")
]

ERRORS = [
    bad("gather", [table], [emb], {}, "missing required input 1", "no-indices"),
    bad("gather", [table, tokens], [], {}, "no output", "no-output"),
    bad("scatter", [data, idx], [data], {}, "missing required input 2", "no-updates"),
    bad("scatter", [data, idx, upd], [data], {"reduce": "mean"}, "reduce='mean'", "bad-reduce"),
]

COVERED_OPS = ops_in(GATHER, SCATTER)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", GATHER + SCATTER)
def test_gather_scatter(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_gather_scatter_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
