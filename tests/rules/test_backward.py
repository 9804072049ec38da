"""Training-graph rules: backward ops, losses, training dropout; formula tables, errors, FlopCounterMode."""

import pytest

from graphperf.cost import Cost
from graphperf.ops import ELEMENTWISE_TRAINING
from graphperf.rules.backward import ATTENTION_BACKWARD_VECTOR_FLOPS_PER_SCORE

from ._util import F32, T, bad, case, check_cases, check_errors, io, ops_in

# -- elementwise training ops: (flops, transcendentals) per output element, inputs as ATen orders them
r, c = 6, 5
n = r * c
g, x, y = T(r, c), T(r, c), T(r, c)
mask = T(r, c, dtype="bool")


def _ew_case(name, f, t):
    if name == "dropout_train":
        ins, outs = [x], [y, mask]  # outputs (y, mask)
    elif name == "dropout_backward":
        ins, outs = [g, mask], [y]
    else:
        ins, outs = [g, x], [y]
    return case(name, ins, outs, {}, Cost(f * n, 0, t * n, *io(ins, outs)), "table")


ELEMENTWISE = [_ew_case(name, f, t) for name, (f, t) in ELEMENTWISE_TRAINING.items()]

# The table's figures restated from their derivations (ops.py):
DERIVED = [
    # gelu: cdf (x/sqrt2, 1+, 0.5*: 3 + erf), pdf (x*x, *-0.5, *beta: 3 + exp), x*pdf, +, *g (3)
    case("gelu_backward", [g, x], [y], {}, Cost((3 + 3 + 3) * n, 0, 2 * n, *io([g, x], [y])), "erf-form"),
    # tanh form: inner (5) + tanh, 0.5x, 1+t, 0.5(1+t) (3), 1-t*t (2), beta(1+3k x^2) (3), 2 products, +, *g (4)
    case("gelu_tanh_backward", [g, x], [y], {}, Cost((5 + 3 + 2 + 3 + 4) * n, 0, n, *io([g, x], [y])), "tanh-form"),
    # silu: sigmoid (2 + exp), 1-s, x*, 1+, s*, g* (5)
    case("silu_backward", [g, x], [y], {}, Cost((2 + 5) * n, 0, n, *io([g, x], [y])), "derived"),
    case("threshold_backward", [g, x], [y], {}, Cost(2 * n, 0, 0, F32 * 2 * n, F32 * n), "compare-select"),
]

# -- attention_backward: 5 matmuls (recompute S, dV, dP, dQ, dK) + per-score softmax backward
b, hq, hkv, l, s, e, ev = 2, 4, 2, 8, 12, 16, 24


def attn_bw(ins, outs, attrs, bh, mask_=False, causal=False, id=""):
    scores = bh * l * s
    matrix = 2 * bh * l * s * e + 2 * bh * l * s * ev + 2 * bh * l * s * ev + 2 * bh * l * s * e + 2 * bh * l * s * e
    per_score = (4 + (1 if mask_ else 0)) * scores
    trans = scores
    if causal:
        matrix, per_score, trans = matrix // 2, -(-per_score // 2), -(-trans // 2)
    vector = per_score + 2 * bh * l * ev  # D = rowsum(dO * O): 2*Ev per query row, never halved
    return case("attention_backward", ins, outs, attrs, Cost(matrix + vector, matrix, trans, *io(ins, outs)), id)


q, k, v = T(b, hq, l, e), T(b, hq, s, e), T(b, hq, s, ev)
o, do, lse = T(b, hq, l, ev), T(b, hq, l, ev), T(b, hq, l)
kg, vg = T(b, hkv, s, e), T(b, hkv, s, ev)
amask = T(b, 1, l, s, dtype="bool")
ATTENTION = [
    attn_bw([do, q, k, v, o, lse], [q, k, v], {}, b * hq, id="mha"),
    attn_bw([do, q, k, v, o, lse], [q, k, v], {"is_causal": True}, b * hq, causal=True, id="causal"),
    attn_bw([do, q, k, v, o, lse, amask], [q, k, v], {}, b * hq, mask_=True, id="mask"),
    attn_bw([do, q, kg, vg, o, lse], [q, kg, vg], {}, b * hq, id="gqa-counts-query-heads"),
]

# -- conv_backward: each of grad_input and grad_weight repeats the forward's multiply-adds
nb, cin, cout, hh, ww, kh, kw = 2, 4, 6, 7, 7, 3, 3
oh, ow = hh - kh + 1, ww - kw + 1


def conv_bw(ins, outs, attrs, forward, bias_adds, id):
    m = attrs.get("output_mask", (True, True, True))
    matrix = forward * (m[0] + m[1])
    vector = bias_adds if m[2] else 0
    return case("conv_backward", ins, outs, attrs, Cost(matrix + vector, matrix, 0, *io(ins, outs)), id)


xc, wc, gc = T(nb, cin, hh, ww), T(cout, cin, kh, kw), T(nb, cout, oh, ow)
fwd = 2 * nb * cout * oh * ow * cin * kh * kw
wg = T(cout, cin // 2, kh, kw)  # groups = 2
fwd_g = 2 * nb * cout * oh * ow * (cin // 2) * kh * kw
xt, wt, gt = T(nb, cin, oh, ow), T(cin, cout, kh, kw), T(nb, cout, hh, ww)  # transposed: x small, out big
fwd_t = 2 * nb * cin * oh * ow * cout * kh * kw
CONV = [
    conv_bw([gc, xc, wc], [xc, wc, T(cout)], {}, fwd, nb * cout * oh * ow, "all-grads"),
    conv_bw([gc, xc, wc], [wc], {"output_mask": (False, True, False)}, fwd, 0, "weight-only"),
    conv_bw([gc, xc, wc], [xc], {"output_mask": (True, False, False)}, fwd, 0, "input-only"),
    conv_bw([gc, xc, wg], [xc, wg], {"output_mask": (True, True, False)}, fwd_g, 0, "grouped"),
    conv_bw([gt, xt, wt], [xt, wt, T(cout)], {"transposed": True}, fwd_t, nb * cout * hh * ww, "transposed"),
]

# -- softmax, norms, embedding, pooling, losses
SOFTMAX = [
    case("softmax_backward", [g, y], [x], {"axis": -1}, Cost(4 * n, 0, 0, *io([g, y], [x])), "softmax"),
    case("softmax_backward", [g, y], [x], {"axis": 1, "log": True}, Cost(3 * n, 0, n, *io([g, y], [x])), "log"),
]

bs, sq, d = 2, 3, 8
xl, gl, stat, wl = T(bs, sq, d), T(bs, sq, d), T(bs, sq, 1), T(d)
nl, rows = bs * sq * d, bs * sq
# xhat 2/elem; grad_input 7 (+1 with weight)/elem + 2/row; grad_weight 2/elem; grad_bias 1/elem
LAYER_NORM = [
    case("layer_norm_backward", [gl, xl, stat, stat, wl], [xl, wl, wl], {"norm_numel": d},
         Cost(2 * nl + (7 + 1) * nl + 2 * rows + 2 * nl + nl, 0, 0, *io([gl, xl, stat, stat, wl], [xl, wl, wl])),
         "all-grads"),
    case("layer_norm_backward", [gl, xl, stat, stat, None], [xl], {"norm_numel": d, "output_mask": (True, False, False)},
         Cost(2 * nl + 7 * nl + 2 * rows, 0, 0, *io([gl, xl, stat, stat], [xl])), "no-affine"),
    case("layer_norm_backward", [gl, xl, stat, stat, wl], [wl, wl], {"norm_numel": d, "output_mask": (False, True, True)},
         Cost(2 * nl + 2 * nl + nl, 0, 0, *io([gl, xl, stat, stat, wl], [wl, wl])), "params-only"),
]

nbn, cbn = 2, 3
xb, cv = T(nbn, cbn, 4, 4), T(cbn)
nbe = nbn * cbn * 4 * 4
BATCH_NORM = [
    # batch statistics: the normalisation backward with one row per channel
    case("batch_norm_backward", [xb, xb, cv, None, None, cv, cv], [xb, cv, cv], {"training": True},
         Cost(2 * nbe + (7 + 1) * nbe + 2 * cbn + 2 * nbe + nbe, 0, 0, *io([xb, xb, cv, cv, cv], [xb, cv, cv])),
         "training"),
    # running statistics: var+eps and rsqrt per channel; dx = dy * (w * rstd): 1/elem + 1/channel;
    # grad_weight xhat (2) + multiply-accumulate (2) per element; grad_bias 1 per element
    case("batch_norm_backward", [xb, xb, cv, cv, cv, None, None], [xb, cv, cv], {"training": False},
         Cost(cbn + (nbe + cbn) + 4 * nbe + nbe, 0, cbn, *io([xb, xb, cv, cv, cv], [xb, cv, cv])), "inference"),
    case("batch_norm_backward", [xb, xb, None, cv, cv, None, None], [xb], {"output_mask": (True, False, False)},
         Cost(cbn + nbe, 0, cbn, *io([xb, xb, cv, cv], [xb])), "inference-input-only"),
]

vocab = 11
ge, idx, wemb = T(bs, sq, d), T(bs, sq, dtype="int64"), T(vocab, d)
gp, ip, xp = T(2, 3, 2, 2), T(2, 3, 2, 2, dtype="int64"), T(2, 3, 4, 4)
MISC = [
    case("embedding_backward", [ge, idx], [wemb], {}, Cost(bs * sq * d, 0, 0, *io([ge, idx], [wemb])), "rows-added"),
    case("max_pool_backward", [gp, ip], [xp], {}, Cost(gp.numel, 0, 0, *io([gp, ip], [xp])), "add-at-argmax"),
    case("avg_pool_backward", [gp], [xp], {"kernel": (2, 2)}, Cost(gp.numel * (2 * 2 + 1), 0, 0, *io([gp], [xp])),
         "window"),
]

nn_, cc = 5, 7
scores, target, cls_w, scalar = T(nn_, cc), T(nn_, dtype="int64"), T(cc), T()
LOSSES = [
    # nll_loss reads only the gathered scores (and class weights): -x[t] (1), [*w (1)], +total (1), mean: sum w (1) + 1 div
    case("nll_loss", [scores, target], [scalar, scalar], {"reduction": "mean"},
         Cost(nn_ * (1 + 1 + 1) + 1, 0, 0, F32 * nn_ + target.nbytes, 2 * F32), "mean"),
    case("nll_loss", [scores, target, cls_w], [scalar, scalar], {"reduction": "sum"},
         Cost(nn_ * (1 + 1 + 1), 0, 0, F32 * nn_ + target.nbytes + F32 * nn_, 2 * F32), "sum-weighted"),
    case("nll_loss", [scores, target], [T(nn_), scalar], {"reduction": "none"},
         Cost(nn_ * 1, 0, 0, F32 * nn_ + target.nbytes, F32 * (nn_ + 1)), "none"),
    case("nll_loss", [T(cc), T(dtype="int64")], [scalar, scalar], {"reduction": "mean"},
         Cost(1 * (1 + 1 + 1) + 1, 0, 0, F32 + 8, 2 * F32), "unbatched"),
    case("nll_loss_backward", [scalar, target, None, scalar], [scores], {"reduction": "mean"},
         Cost(nn_ * (1 + 1), 0, 0, *io([scalar, target, scalar], [scores])), "mean"),
    case("nll_loss_backward", [scalar, target, cls_w, scalar], [scores], {"reduction": "sum"},
         Cost(nn_ * (1 + 1), 0, 0, *io([scalar, target, cls_w, scalar], [scores])), "sum-weighted"),
    case("mse_loss", [x, y], [scalar], {"reduction": "mean"}, Cost(3 * n + 1, 0, 0, *io([x, y], [scalar])), "mean"),
    case("mse_loss", [x, y], [scalar], {"reduction": "sum"}, Cost(3 * n, 0, 0, *io([x, y], [scalar])), "sum"),
    case("mse_loss", [x, y], [x], {"reduction": "none"}, Cost(2 * n, 0, 0, *io([x, y], [x])), "none"),
    case("mse_loss_backward", [scalar, x, y], [x], {"reduction": "mean"},
         Cost(4 * n, 0, 0, *io([scalar, x, y], [x])), "mean"),
    case("mse_loss_backward", [scalar, x, y], [x], {"reduction": "sum"}, Cost(3 * n, 0, 0, *io([scalar, x, y], [x])),
         "sum"),
]

ERRORS = [
    bad("conv_backward", [gc, xc, wc], [xc], {}, r"output_mask \(True, True, True\) asks for 3", "mask-vs-outputs"),
    bad("conv_backward", [gc, xc, wc], [xc], {"output_mask": (True,)}, "must be 3 bools", "short-mask"),
    bad("conv_backward", [gc, xc, T(cout, cin + 1, kh, kw)], [xc, wc, T(cout)], {}, "^conv_backward: ", "bad-weight"),
    bad("attention_backward", [do, T(b, hq, l), k, v, o, lse], [q, k, v], {}, "^attention_backward: ", "rank"),
    bad("layer_norm_backward", [gl, xl, stat, stat, wl], [xl, wl, wl], {"norm_numel": 5}, "does not divide", "rows"),
    bad("softmax_backward", [g, y], [x], {"axis": 3}, "not an axis", "axis"),
    bad("nll_loss", [scores, target], [scalar, scalar], {"reduction": "avg"}, "reduction='avg'", "reduction"),
    bad("nll_loss", [T(2, 3, 4), target], [scalar, scalar], {}, r"expected scores \[N, C\]", "rank"),
    bad("embedding_backward", [ge, idx], [T(vocab, d + 1)], {}, "expected grad_out", "width"),
    bad("avg_pool_backward", [gp], [xp], {}, "missing required attribute 'kernel'", "no-kernel"),
    bad("batch_norm_backward", [T(4), T(4)], [T(4)], {"output_mask": (True, False, False)}, r"\[N, C, \*spatial\]",
        "rank"),
]

ALL = ELEMENTWISE + DERIVED + ATTENTION + CONV + SOFTMAX + LAYER_NORM + BATCH_NORM + MISC + LOSSES
COVERED_OPS = ops_in(ALL)


@pytest.mark.parametrize("op,ins,outs,attrs,expected", ALL)
def test_training_rules(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op,ins,outs,attrs,match", ERRORS)
def test_training_rule_errors(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


def test_attention_backward_vector_constant_matches_its_derivation():
    # recompute P: scale, subtract lse (+ exp); dS = P * (dP - D): subtract, multiply; scale dS
    assert ATTENTION_BACKWARD_VECTOR_FLOPS_PER_SCORE == 1 + 1 + 1 + 1


def test_attention_backward_matrix_flops_equal_flopcountermode():
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    from ._util import run

    oracle = flop_counter.sdpa_backward_flop_count(do.shape, q.shape, k.shape, v.shape)
    assert run("attention_backward", [do, q, k, v, o, lse], [q, k, v]).matrix_flops == oracle
    assert run("attention_backward", [do, q, k, v, o, lse], [q, k, v], {"is_causal": True}).matrix_flops * 2 == oracle


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_backward_matrix_flops_against_flopcountermode(groups):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from ._util import run

    w_shape = (cout, cin // groups, kh, kw)
    xt_ = torch.randn(nb, cin, hh, ww, requires_grad=True)
    wt_ = torch.randn(*w_shape, requires_grad=True)
    out = torch.nn.functional.conv2d(xt_, wt_, groups=groups)
    mode = FlopCounterMode(display=False)
    with mode:
        out.backward(torch.ones_like(out))
    oracle = mode.get_total_flops()
    ours = run("conv_backward", [T(*out.shape), T(*xt_.shape), T(*w_shape)], [T(*xt_.shape), T(*w_shape)],
               {"output_mask": (True, True, False)}).matrix_flops
    forward = 2 * nb * cout * oh * ow * (cin // groups) * kh * kw
    assert ours == 2 * forward
    # FlopCounterMode counts the weight gradient of a grouped convolution `groups` times over
    assert oracle == forward + groups * forward
