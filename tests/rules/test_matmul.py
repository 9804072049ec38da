"""matmul and einsum rules: formula tables, errors, and FlopCounterMode as the oracle."""

import pytest

from graphperf.cost import Cost

from ._util import BF16, F32, T, bad, case, check_cases, check_errors, io, ops_in, run

b, m, k, n = 2, 3, 5, 7

MATMUL = [
    case("matmul", [T(m, k), T(k, n)], [T(m, n)], {},
         Cost(2 * m * n * k, 2 * m * n * k, 0, F32 * (m * k + k * n), F32 * m * n), "mm"),
    case("matmul", [T(b, m, k), T(b, k, n)], [T(b, m, n)], {},
         Cost(2 * b * m * n * k, 2 * b * m * n * k, 0, F32 * b * (m * k + k * n), F32 * b * m * n), "bmm"),
    case("matmul", [T(b, 4, m, k), T(k, n)], [T(b, 4, m, n)], {},
         Cost(2 * b * 4 * m * n * k, 2 * b * 4 * m * n * k, 0, F32 * (b * 4 * m * k + k * n), F32 * b * 4 * m * n),
         "broadcast-batch"),
    case("matmul", [T(k, m), T(k, n)], [T(m, n)], {"trans_a": True},
         Cost(2 * m * n * k, 2 * m * n * k, 0, F32 * (k * m + k * n), F32 * m * n), "trans_a"),
    # linear: x [b, m, k] @ W[n, k]^T + bias[n]: the bias is one vector add per output element
    case("matmul", [T(b, m, k, dtype="bfloat16"), T(n, k, dtype="bfloat16"), T(n, dtype="bfloat16")],
         [T(b, m, n, dtype="bfloat16")], {"trans_b": True},
         Cost(2 * b * m * n * k + b * m * n, 2 * b * m * n * k, 0, BF16 * (b * m * k + n * k + n), BF16 * b * m * n),
         "linear-bias"),
    case("matmul", [T(k), T(k, n)], [T(n)], {}, Cost(2 * n * k, 2 * n * k, 0, F32 * (k + k * n), F32 * n), "vec-mat"),
    case("matmul", [T(m, k), T(k)], [T(m)], {}, Cost(2 * m * k, 2 * m * k, 0, F32 * (m * k + k), F32 * m), "mat-vec"),
    case("matmul", [T(k), T(k)], [T()], {}, Cost(2 * k, 2 * k, 0, F32 * 2 * k, F32), "dot"),
]

# einsum: sizes i=2, j=3, k=4, l=5
i_, j_, k_, l_ = 2, 3, 4, 5
EINSUM = [
    case("einsum", [T(i_, j_), T(j_, k_)], [T(i_, k_)], {"equation": "ij,jk->ik"},
         Cost(2 * i_ * j_ * k_, 2 * i_ * j_ * k_, 0, *io([T(i_, j_), T(j_, k_)], [T(i_, k_)])), "matmul"),
    case("einsum", [T(b, 4, m, k), T(b, 4, n, k)], [T(b, 4, m, n)], {"equation": "bhqd, bhkd -> bhqk"},
         Cost(2 * b * 4 * m * n * k, 2 * b * 4 * m * n * k, 0, *io([T(b, 4, m, k), T(b, 4, n, k)], [T(b, 4, m, n)])),
         "attention-scores"),
    case("einsum", [T(i_, j_), T(j_, k_)], [T(i_, k_)], {"equation": "ij,jk"},
         Cost(2 * i_ * j_ * k_, 2 * i_ * j_ * k_, 0, *io([T(i_, j_), T(j_, k_)], [T(i_, k_)])), "implicit-output"),
    case("einsum", [T(b, i_, j_), T(j_, k_)], [T(b, i_, k_)], {"equation": "...ij,jk->...ik"},
         Cost(2 * b * i_ * j_ * k_, 2 * b * i_ * j_ * k_, 0, *io([T(b, i_, j_), T(j_, k_)], [T(b, i_, k_)])),
         "ellipsis"),
    # k appears only in the second operand and not in the output: summed first (j*k adds), then mv
    case("einsum", [T(i_, j_), T(j_, k_)], [T(i_)], {"equation": "ij,jk->i"},
         Cost(j_ * k_ + 2 * i_ * j_, 2 * i_ * j_, 0, *io([T(i_, j_), T(j_, k_)], [T(i_)])), "presum"),
    # nothing contracted: one multiply per term, on the vector unit
    case("einsum", [T(i_), T(j_)], [T(i_, j_)], {"equation": "i,j->ij"},
         Cost(i_ * j_, 0, 0, *io([T(i_), T(j_)], [T(i_, j_)])), "outer"),
    case("einsum", [T(i_, j_), T(i_, j_)], [T(i_, j_)], {"equation": "ij,ij->ij"},
         Cost(i_ * j_, 0, 0, *io([T(i_, j_)] * 2, [T(i_, j_)])), "hadamard"),
    # one operand: a permutation or a diagonal is a copy; anything summed costs numel(input)
    case("einsum", [T(i_, j_)], [T(j_, i_)], {"equation": "ij->ji"},
         Cost(0, 0, 0, F32 * i_ * j_, F32 * i_ * j_), "transpose"),
    case("einsum", [T(i_, j_)], [T(i_)], {"equation": "ij->i"},
         Cost(i_ * j_, 0, 0, F32 * i_ * j_, F32 * i_), "row-sum"),
    case("einsum", [T(j_, j_)], [T()], {"equation": "ii->"}, Cost(j_ * j_, 0, 0, F32 * j_ * j_, F32), "trace"),
    case("einsum", [T(j_, j_)], [T(j_)], {"equation": "ii->i"}, Cost(0, 0, 0, F32 * j_ * j_, F32 * j_), "diagonal"),
    # three operands, left to right: (ij,jk -> ik; j contracted) then (ik,kl -> il; k contracted)
    case("einsum", [T(i_, j_), T(j_, k_), T(k_, l_)], [T(i_, l_)], {"equation": "ij,jk,kl->il"},
         Cost(2 * i_ * j_ * k_ + 2 * i_ * k_ * l_, 2 * i_ * j_ * k_ + 2 * i_ * k_ * l_, 0,
              *io([T(i_, j_), T(j_, k_), T(k_, l_)], [T(i_, l_)])), "chain3"),
    # three operands where j is still needed by the third: step 1 keeps j (no contraction: outer
    # product i*j*k multiplies), step 2 contracts j and k: 2*i*j*k*l
    case("einsum", [T(i_, j_), T(k_), T(j_, k_, l_)], [T(i_, l_)], {"equation": "ij,k,jkl->il"},
         Cost(i_ * j_ * k_ + 2 * i_ * j_ * k_ * l_, 2 * i_ * j_ * k_ * l_, 0,
              *io([T(i_, j_), T(k_), T(j_, k_, l_)], [T(i_, l_)])), "chain3-keep"),
]

# grouped_matmul: g groups; s rows of a sorted by group (MoE tokens by expert), offsets [g] int32
g, s = 4, 9
GROUPED = [
    case("grouped_matmul", [T(s, k), T(g, k, n), T(g, dtype="int32")], [T(s, n)], {},
         Cost(2 * s * k * n, 2 * s * k * n, 0, F32 * (s * k + g * k * n) + 4 * g, F32 * s * n), "moe-2d-3d"),
    case("grouped_matmul", [T(g, m, k), T(g, k, n)], [T(g, m, n)], {},
         Cost(2 * g * m * k * n, 2 * g * m * k * n, 0, F32 * g * (m * k + k * n), F32 * g * m * n), "3d-3d"),
    # K split by offsets: group i sums over its own K_i, and sum K_i = k
    case("grouped_matmul", [T(m, k), T(k, n), T(g, dtype="int32")], [T(g, m, n)], {},
         Cost(2 * m * k * n, 2 * m * k * n, 0, F32 * (m * k + k * n) + 4 * g, F32 * g * m * n), "k-split"),
]

ERRORS = [
    bad("grouped_matmul", [T(s, k), T(g, k + 1, n)], [T(s, n)], {}, "contraction sizes differ", "k-mismatch"),
    bad("grouped_matmul", [T(s), T(g, k, n)], [T(s, n)], {}, "2-D or 3-D", "rank"),
    bad("grouped_matmul", [T(m, k), T(k, n)], [T(m, n)], {}, "writes \\[G, M, N\\]", "k-split-out"),
    bad("matmul", [T(m, k)], [T(m, n)], {}, "matmul: missing required input 1", "missing-b"),
    bad("matmul", [T(), T(k, n)], [T(n)], {}, "rank >= 1", "scalar"),
    bad("matmul", [T(m, k), T(k + 1, n)], [T(m, n)], {}, "contraction sizes differ", "k-mismatch"),
    bad("matmul", [T(m, k), T(k, n)], [], {}, "no output", "no-output"),
    bad("einsum", [T(i_, j_), T(j_, k_)], [T(i_, k_)], {}, "equation", "no-equation"),
    bad("einsum", [T(i_, j_)], [T(i_, k_)], {"equation": "ij,jk->ik"}, "names 2 operand", "operand-count"),
    bad("einsum", [T(i_, j_, k_), T(j_, k_)], [T(i_, k_)], {"equation": "ij,jk->ik"}, "do not fit", "rank"),
    bad("einsum", [T(i_, j_), T(j_ + 1, k_)], [T(i_, k_)], {"equation": "ij,jk->ik"}, "sizes", "size-mismatch"),
    bad("einsum", [T(i_, j_), T(j_, k_)], [T(i_, k_)], {"equation": "ij,jk->iz"}, "no operand has", "unknown-out"),
]

COVERED_OPS = ops_in(MATMUL, EINSUM, GROUPED)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", MATMUL + EINSUM + GROUPED)
def test_matmul_family(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_matmul_family_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


# --- FlopCounterMode as the independent oracle: run the real op, compare matrix_flops ---------

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def _counted(fn, *args) -> int:
    mode = FlopCounterMode(display=False)
    with mode:
        fn(*args)
    return mode.get_total_flops()


def _t(x) -> object:
    return T(*x.shape)


ORACLE = [
    ("mm", torch.mm, [(m, k), (k, n)], {}),
    ("bmm", torch.bmm, [(b, m, k), (b, k, n)], {}),
    ("addmm", lambda c, x, w: torch.addmm(c, x, w), [(n,), (m, k), (k, n)], {"bias_first": True}),
    ("linear", torch.nn.functional.linear, [(b, m, k), (n, k), (n,)], {"trans_b": True}),
    ("matmul-broadcast", torch.matmul, [(b, 4, m, k), (k, n)], {}),
    ("matmul-3d-2d", torch.matmul, [(b, m, k), (k, n)], {}),
]


@pytest.mark.parametrize("name, fn, shapes, attrs", ORACLE, ids=[o[0] for o in ORACLE])
def test_matmul_matrix_flops_equal_flop_counter_mode(name, fn, shapes, attrs):
    xs = [torch.randn(*s) for s in shapes]
    out = fn(*xs)
    ins = [_t(x) for x in xs]
    if attrs.get("bias_first"):  # addmm(c, a, b) is our matmul(a, b, c)
        ins = ins[1:] + ins[:1]
    rule_attrs = {key: v for key, v in attrs.items() if key != "bias_first"}
    cost = run("matmul", ins, [_t(out)], rule_attrs)
    assert cost.matrix_flops == _counted(fn, *xs)


def test_matvec_is_counted_where_flop_counter_mode_counts_nothing():
    # aten.mv has no FlopCounterMode formula (torch 2.13 counts 0); we count 2 * m * k.
    a, v = torch.randn(m, k), torch.randn(k)
    assert run("matmul", [T(m, k), T(k)], [T(m)]).matrix_flops == 2 * m * k
    assert _counted(torch.mv, a, v) in (0, 2 * m * k)


EINSUM_ORACLE = ["ij,jk->ik", "bij,bjk->bik", "bhqd,bhkd->bhqk", "ij,jk->i", "i,j->ij", "ij,jk,kl->il"]
EINSUM_SHAPES = {"i": 2, "j": 3, "k": 4, "l": 5, "b": 2, "h": 3, "q": 4, "d": 5}


@pytest.mark.parametrize("equation", EINSUM_ORACLE)
def test_einsum_matrix_flops_equal_flop_counter_mode(equation):
    lhs = equation.split("->")[0].split(",")
    xs = [torch.randn(*(EINSUM_SHAPES[c] for c in term)) for term in lhs]
    with torch.backends.opt_einsum.flags(enabled=False):  # torch contracts left to right, as we do
        out = torch.einsum(equation, *xs)
        counted = _counted(torch.einsum, equation, *xs)
    cost = run("einsum", [_t(x) for x in xs], [_t(out)], {"equation": equation})
    assert cost.matrix_flops == counted
