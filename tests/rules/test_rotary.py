"""rotary: 3 flops per rotated element; the cos/sin rows the position ids select."""

import pytest

from graphperf.cost import Cost

from ._util import F32, T, bad, case, check_cases, check_errors, ops_in

B, N, S, H, P = 2, 4, 6, 8, 32  # batch, heads, sequence, head size, table rows
x4, x3 = T(B, N, S, H), T(B, S, N * H)
table, ids = T(P, H // 2), T(B, S, dtype="int64")
X = F32 * B * N * S * H
ROWS = F32 * (B * S) * (H // 2)  # cos (or sin) rows gathered by the ids

CASES = [
    case("rotary", [x4, table, table, ids], [x4], {}, Cost(3 * B * N * S * H, 0, 0, X + 2 * ROWS + 8 * B * S, X),
         "bnsh-position-ids"),
    case("rotary", [x3, table, table, ids], [x3], {"num_heads": N},
         Cost(3 * B * N * S * H, 0, 0, X + 2 * ROWS + 8 * B * S, X), "bsd-num-heads"),
    # partial rotation: half of each head row rotated, the rest copied
    case("rotary", [x4, T(P, H // 4), T(P, H // 4), ids], [x4], {"rotary_dim": H // 2},
         Cost(3 * B * N * S * H // 2, 0, 0, X + 2 * ROWS // 2 + 8 * B * S, X), "partial"),
    # no ids: the tables ([B, S, H/2], already per position) are read whole
    case("rotary", [x4, T(B, S, H // 2), T(B, S, H // 2)], [x4], {},
         Cost(3 * B * N * S * H, 0, 0, X + 2 * F32 * B * S * H // 2, X), "tables-per-position"),
]

ERRORS = [
    bad("rotary", [x3, table, table], [x3], {}, "num_heads", "3d-without-heads"),
    bad("rotary", [x4, table, table], [x4], {"rotary_dim": H + 2}, "rotary_dim", "too-wide"),
]

COVERED_OPS = ops_in(CASES)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CASES)
def test_rotary(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_rotary_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
