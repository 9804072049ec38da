"""The `linalg` rule: FLOPs from the iteration domain and the body, bytes from indexing-map footprints."""

import pytest

from graphperf.cost import Cost

from ._util import BF16, F32, T, bad, case, check_cases, check_errors, ops_in

m, k, n = 8, 32, 16


def attrs(domain, fpp, tpp=0, matrix=False, reads=(), **more):
    return {"domain": domain, "flops_per_point": fpp, "transcendentals_per_point": tpp, "matrix": matrix,
            "reads": reads, **more}


TABLE = [
    # matmul: domain (m, n, k), body mulf + addf = 2 per point -> 2mnk, all on the matrix unit;
    # A and B read once (their maps cover m x k and k x n), C written once
    case("linalg", [T(m, k), T(k, n)], [T(m, n)], attrs((m, n, k), 2, matrix=True, reads=(m * k, k * n)),
         Cost(2 * m * n * k, 2 * m * n * k, 0, F32 * (m * k + k * n), F32 * m * n), "matmul"),
    # broadcast add of a row vector: domain (m, n), 1 flop per point; the [n] operand is read once
    case("linalg", [T(m, n), T(n)], [T(m, n)], attrs((m, n), 1, reads=(m * n, n)),
         Cost(m * n, 0, 0, F32 * (m * n + n), F32 * m * n), "broadcast-add"),
    # exp in bf16: transcendentals apart from flops
    case("linalg", [T(m, n, dtype="bfloat16")], [T(m, n, dtype="bfloat16")], attrs((m, n), 0, 1, reads=(m * n,)),
         Cost(0, 0, m * n, BF16 * m * n, BF16 * m * n), "exp-bf16"),
    # insert_slice-like copy: reads the slice, writes only the slice into the destination
    case("linalg", [T(m, n), T(2 * m, n)], [T(2 * m, n)], attrs((m, n), 0, reads=(m * n, 0), writes=(m * n,)),
         Cost(0, 0, 0, F32 * m * n, F32 * m * n), "insert-slice"),
    # an op that did not lower: its graph node's figures, as they are
    case("linalg", [T(m, n)], [T(m, n)], {"graph_level_cost": {"flops": 7, "matrix_flops": 0, "transcendentals": 1,
                                                                 "bytes_read": 5, "bytes_written": 3}},
         Cost(7, 0, 1, 5, 3), "graph-level-fallback"),
]

ERRORS = [
    bad("linalg", [T(m, n)], [T(m, n)], attrs((m, n), 1, reads=(m * n,), unknown_body=("math.foo",)),
        "no counting convention", "unknown-body-op"),
    bad("linalg", [T(m, n)], [T(m, n)], attrs((m, n), 1, reads=()), "reads", "reads-per-input"),
    bad("linalg", [T(m, n)], [T(m, n)], attrs(None, 1, reads=(m * n,)), "domain", "no-domain"),
    bad("linalg", [T(m, n)], [T(m, n)], attrs((m, n), -1, reads=(m * n,)), "flops_per_point", "negative"),
]

COVERED_OPS = ops_in(TABLE)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", TABLE)
def test_linalg(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_linalg_errors(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
