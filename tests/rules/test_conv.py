"""conv rule: formula table, errors, and FlopCounterMode / conv_flop_count as the oracle."""

import math

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, io, ops_in, run

n, cin, cout, h, w, kh, kw = 2, 4, 6, 8, 9, 3, 3
oh, ow = h - kh + 1, w - kw + 1  # stride 1, no padding


def conv_case(x, wt, out, attrs, matrix, vector, id):
    ins = [x, wt] if vector == 0 else [x, wt, T(out.shape[1])]
    return case("conv", ins, [out], attrs, Cost(matrix + vector, matrix, 0, *io(ins, [out])), id)


CONV = [
    conv_case(T(n, cin, h, w), T(cout, cin, kh, kw), T(n, cout, oh, ow), {},
              2 * n * cout * oh * ow * cin * kh * kw, 0, "2d"),
    conv_case(T(n, cin, h, w), T(cout, cin, kh, kw), T(n, cout, oh, ow), {},
              2 * n * cout * oh * ow * cin * kh * kw, n * cout * oh * ow, "2d-bias"),
    # groups=2: each output channel sees cin/2 input channels (w.shape[1])
    conv_case(T(n, cin, h, w), T(cout, cin // 2, kh, kw), T(n, cout, oh, ow), {},
              2 * n * cout * oh * ow * (cin // 2) * kh * kw, 0, "grouped"),
    # depthwise: groups = cin = cout, w [cin, 1, kh, kw]
    conv_case(T(n, cin, h, w), T(cin, 1, kh, kw), T(n, cin, oh, ow), {},
              2 * n * cin * oh * ow * 1 * kh * kw, 0, "depthwise"),
    conv_case(T(n, cin, h), T(cout, cin, kh), T(n, cout, oh), {}, 2 * n * cout * oh * cin * kh, 0, "1d"),
    conv_case(T(n, cin, h, h, h), T(cout, cin, kh, kh, kh), T(n, cout, oh, oh, oh), {},
              2 * n * cout * oh ** 3 * cin * kh ** 3, 0, "3d"),
    # transposed: every *input* point scatters a kernel window into cout/groups channels
    conv_case(T(n, cin, h, w), T(cin, cout, kh, kw), T(n, cout, h + kh - 1, w + kw - 1), {"transposed": True},
              2 * n * cin * h * w * cout * kh * kw, 0, "transposed"),
    conv_case(T(n, cin, h, w), T(cin, cout // 2, kh, kw), T(n, cout, 2 * h + 1, 2 * w + 1), {"transposed": True},
              2 * n * cin * h * w * (cout // 2) * kh * kw, 0, "transposed-grouped-strided"),
]

ERRORS = [
    bad("conv", [T(cin, h, w)], [T(cout, oh, ow)], {}, "missing required input 1", "no-weight"),
    bad("conv", [T(n, h), T(cout, cin)], [T(n, cout)], {}, "spatial", "rank-2"),
    bad("conv", [T(n, cin, h, w), T(cout, cin, kh)], [T(n, cout, oh, ow)], {}, "same rank", "weight-rank"),
    bad("conv", [T(n, cin, h, w), T(cout + 1, cin, kh, kw)], [T(n, cout, oh, ow)], {}, "Cout", "cout-mismatch"),
    bad("conv", [T(n, cin, h, w), T(cout, 3, kh, kw)], [T(n, cout, oh, ow)], {}, "does not divide", "groups"),
    bad("conv", [T(n, cin, h, w), T(cout, cout, kh, kw)], [T(n, cout, h, w)], {"transposed": True},
        "Cin", "transposed-w"),
]

COVERED_OPS = ops_in(CONV)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CONV)
def test_conv(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_conv_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


# --- FlopCounterMode as the independent oracle -------------------------------------------------

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count  # noqa: E402

F = torch.nn.functional
# (id, spatial dims, N, Cin, Cout, input size, kernel, stride, padding, dilation, groups, transposed)
ORACLE = [
    ("1d", 1, 2, 3, 5, (11,), (3,), 1, 0, 1, 1, False),
    ("1d-stride-pad", 1, 1, 4, 4, (16,), (5,), 2, 2, 1, 2, False),
    ("2d", 2, 2, 3, 8, (9, 7), (3, 3), 1, 0, 1, 1, False),
    ("2d-stride-pad-dilation", 2, 1, 4, 6, (12, 10), (3, 2), (2, 1), (1, 2), (2, 1), 1, False),
    ("2d-groups", 2, 2, 6, 9, (8, 8), (3, 3), 1, 1, 1, 3, False),
    ("2d-depthwise", 2, 1, 8, 8, (7, 7), (3, 3), 1, 1, 1, 8, False),
    ("3d", 3, 1, 2, 4, (5, 6, 7), (2, 3, 3), 1, 1, 1, 1, False),
    ("1d-transposed", 1, 2, 4, 3, (7,), (3,), 2, 1, 1, 1, True),
    ("2d-transposed", 2, 2, 4, 6, (5, 6), (3, 3), 2, 1, 1, 2, True),
    ("3d-transposed", 3, 1, 3, 2, (3, 4, 3), (2, 2, 2), 1, 0, 1, 1, True),
]


def _conv(dims, transposed):
    return getattr(F, f"conv_transpose{dims}d" if transposed else f"conv{dims}d")


@pytest.mark.parametrize("cfg", ORACLE, ids=[c[0] for c in ORACLE])
def test_conv_matrix_flops_equal_flop_counter_mode(cfg):
    _, dims, batch, c_in, c_out, size, kernel, stride, padding, dilation, groups, transposed = cfg
    x = torch.randn(batch, c_in, *size)
    if transposed:
        wt = torch.randn(c_in, c_out // groups, *kernel)
    else:
        wt = torch.randn(c_out, c_in // groups, *kernel)
    fn = _conv(dims, transposed)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    mode = FlopCounterMode(display=False)
    with mode:
        out = fn(x, wt, torch.randn(c_out), **kwargs)
    cost = run("conv", [T(*x.shape), T(*wt.shape), T(c_out)], [T(*out.shape)], {"transposed": transposed})
    assert cost.matrix_flops == mode.get_total_flops()
    assert cost.matrix_flops == conv_flop_count(list(x.shape), list(wt.shape), list(out.shape), transposed)
    assert cost.vector_flops == math.prod(out.shape)  # the bias, which FlopCounterMode ignores
