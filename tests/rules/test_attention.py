"""attention rule: formula table (MHA, GQA, mask, causal, ONNX 3-D), errors, FlopCounterMode oracle."""

import pytest

from graphperf.cost import Cost
from graphperf.rules.attention import TRANSCENDENTALS_PER_SCORE, VECTOR_FLOPS_PER_SCORE

from ._util import T, bad, case, check_cases, check_errors, io, ops_in, run

b, hq, hkv, l, s, e, ev = 2, 8, 2, 16, 24, 32, 48


def attn(ins, out, attrs, bh, mask=False, causal=False, id=""):
    """Expected cost written from the formulas: 2 matmuls + (5 [+1 mask]) flops and 1 exp per score."""
    scores = bh * l * s
    matrix = 2 * bh * l * s * e + 2 * bh * l * s * ev
    vector = (5 + (1 if mask else 0)) * scores
    trans = 1 * scores
    if causal:
        matrix, vector, trans = matrix // 2, -(-vector // 2), -(-trans // 2)
    return case("attention", ins, [out], attrs, Cost(matrix + vector, matrix, trans, *io(ins, [out])), id)


q4, k4, v4, o4 = T(b, hq, l, e), T(b, hq, s, e), T(b, hq, s, ev), T(b, hq, l, ev)
kg, vg = T(b, hkv, s, e), T(b, hkv, s, ev)
mask = T(b, 1, l, s, dtype="bool")
q3, k3, v3, o3 = T(b, l, hq * e), T(b, s, hkv * e), T(b, s, hkv * ev), T(b, l, hq * ev)
heads = {"q_num_heads": hq, "kv_num_heads": hkv}

ATTENTION = [
    attn([q4, k4, v4], o4, {}, b * hq, id="mha"),
    # grouped-query: k/v have hkv < hq heads; the count still uses the query heads
    attn([q4, kg, vg], o4, {}, b * hq, id="gqa"),
    attn([q4, kg, vg, mask], o4, {}, b * hq, mask=True, id="mask"),
    attn([q4, k4, v4], o4, {"is_causal": True}, b * hq, causal=True, id="causal"),
    attn([q4, k4, v4, mask], o4, {"is_causal": True}, b * hq, mask=True, causal=True, id="causal-mask"),
    attn([q3, k3, v3], o3, heads, b * hq, id="onnx-3d"),
    attn([q3, k3, v3], o3, {**heads, "is_causal": True}, b * hq, causal=True, id="onnx-3d-causal"),
    attn([T(3, b, hq, l, e), T(3, b, hkv, s, e), T(3, b, hkv, s, ev)], T(3, b, hq, l, ev), {}, 3 * b * hq, id="5d"),
]

ERRORS = [
    bad("attention", [q3, k3, v3], [o3], {}, "q_num_heads and kv_num_heads", "3d-no-heads"),
    bad("attention", [q3, k3, v3], [o3], {"q_num_heads": hq}, "q_num_heads and kv_num_heads", "3d-one-head-attr"),
    bad("attention", [q3, k3, v3], [o3], {"q_num_heads": 5, "kv_num_heads": hkv}, "divisible", "3d-bad-heads"),
    bad("attention", [q4, k4], [o4], {}, "missing required input 2", "no-v"),
    bad("attention", [q4, T(b, hq, s, e + 1), v4], [o4], {}, "incompatible", "e-mismatch"),
    bad("attention", [q4, k4, T(b, hq, s + 1, ev)], [o4], {}, "incompatible", "s-mismatch"),
    bad("attention", [q4, T(b, 3, s, e), T(b, 3, s, ev)], [o4], {}, "multiple", "heads-not-multiple"),
    bad("attention", [T(l, e), T(s, e), T(s, ev)], [T(l, ev)], {}, "rank >= 3", "rank-2"),
]

COVERED_OPS = ops_in(ATTENTION)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", ATTENTION)
def test_attention(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_attention_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)


def test_vector_work_per_score_is_scale_plus_softmax():
    scale, softmax_max, softmax_sub, softmax_sum, softmax_div = 1, 1, 1, 1, 1
    assert VECTOR_FLOPS_PER_SCORE == scale + softmax_max + softmax_sub + softmax_sum + softmax_div
    assert TRANSCENDENTALS_PER_SCORE == 1  # exp


def test_causal_is_exactly_half_of_all_score_work():
    full = run("attention", [q4, k4, v4], [o4])
    causal = run("attention", [q4, k4, v4], [o4], {"is_causal": True})
    assert 2 * causal.matrix_flops == full.matrix_flops
    assert 2 * causal.vector_flops == full.vector_flops
    assert 2 * causal.transcendentals == full.transcendentals
    assert (causal.bytes_read, causal.bytes_written) == (full.bytes_read, full.bytes_written)


def test_causal_odd_score_count_rounds_up():
    q, k, v = T(1, 1, 1, 4), T(1, 1, 1, 4), T(1, 1, 1, 4)
    causal = run("attention", [q, k, v], [q], {"is_causal": True})
    assert causal.matrix_flops == (2 * 4 + 2 * 4) // 2
    assert causal.vector_flops == (5 + 1) // 2  # ceil(5 / 2)
    assert causal.transcendentals == 1  # ceil(1 / 2)


def test_bytes_never_include_the_scores():
    cost = run("attention", [q4, kg, vg], [o4])
    assert cost.bytes_read == 4 * (b * hq * l * e + b * hkv * s * e + b * hkv * s * ev)
    assert cost.bytes_written == 4 * b * hq * l * ev


# --- FlopCounterMode / sdpa_flop_count as the independent oracle -------------------------------

torch = pytest.importorskip("torch")
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count  # noqa: E402

SDPA = [("mha", hq, hq, e, e), ("gqa", hq, hkv, e, e), ("ev-differs", 4, 4, 16, 8), ("mqa", 4, 1, 8, 8)]


@pytest.mark.parametrize("name, h_q, h_kv, d, dv", SDPA, ids=[c[0] for c in SDPA])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention_matrix_flops_against_flop_counter_mode(name, h_q, h_kv, d, dv, causal):
    q, k, v = torch.randn(b, h_q, l, d), torch.randn(b, h_kv, s, d), torch.randn(b, h_kv, s, dv)
    mode = FlopCounterMode(display=False)
    # The math backend runs the two bmms FlopCounterMode counts; on CPU the fused flash kernel
    # has no formula in torch 2.13 and counts 0 (the "attention missing" complaint).
    with sdpa_kernel(SDPBackend.MATH), mode:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=h_q != h_kv)
    shapes = [list(t.shape) for t in (q, k, v)]
    cost = run("attention", [T(*t.shape) for t in (q, k, v)], [T(*out.shape)], {"is_causal": causal})
    reference = sdpa_flop_count(*shapes)
    # FlopCounterMode counts causal attention in full; we count half the score work. Pin both.
    assert mode.get_total_flops() == reference
    assert cost.matrix_flops == (reference // 2 if causal else reference)
