"""The size-aware kernel model (graphperf/kernel_time.py): each mechanism against a hand-derived case."""

import pytest

from graphperf import kernel_time as kt

R = 1e12  # unit rate, FLOP/s
B = 1e12  # stream bandwidth, B/s


def _params(units, floor_s=0.0, matrix_floor_s=0.0):
    return kt.KernelParams(units=units, stream_bytes_per_s=B, strided_bytes_per_s=B / 2, row_bytes_per_s=B / 4,
                           floor_s={"stream": floor_s, "strided": 2 * floor_s, "row": 3 * floor_s},
                           matrix_floor_s=matrix_floor_s, misaligned_factor=0.125)


def test_gemm_wave_quantization():
    # M = 640, N = 128, K = 256 on 4 units, no split (5 tiles * 2 > 4):
    # (128, 256): 5 tiles -> 2 waves of 2*128*256*256; (256, 128): 3 tiles (M padded to 768) -> 1 wave of
    # 2*256*128*256; (128, 128): 5 tiles -> 2 waves of 2*128*128*256. Best: 2*256*128*256 (tie, first kept).
    compute_s, memory_s, tile = kt.gemm_time(1, 640, 128, 256, 1000, R, _params(4))
    assert compute_s == pytest.approx(2 * 256 * 128 * 256 / R)
    assert tile == (256, 128, 1)
    assert memory_s == pytest.approx(1000 / B)


def test_gemm_split_k_fills_the_machine():
    # M = N = 128, K = 4096 on 8 units: (128, 128) is one tile; K splits 2, 4, 8 (8 tiles <= 8 units,
    # K/8 = 512 >= SPLIT_K_MIN), so one wave of 2*128*128*512; the fp32 partials are written and read back.
    compute_s, memory_s, tile = kt.gemm_time(1, 128, 128, 4096, 0, R, _params(8))
    assert tile == (128, 128, 8)
    assert compute_s == pytest.approx(2 * 128 * 128 * 512 / R)
    assert memory_s == pytest.approx(2 * 4 * 128 * 128 * 8 / B)


def test_gemm_small_tiles_pay_operand_reuse():
    # SIMT 64x64 tiles reuse each operand 64*64/128 = 32 times, half of FULL_RATE_REUSE: half rate.
    # 256 x 256 x 128 on 16 units: (128,128): 4 tiles, no split (K/2 = 64 < SPLIT_K_MIN), one wave of
    # 2*128*128*128 at full rate; (64,64): 16 tiles, one wave of 2*64*64*128 at half rate, half as long: it wins.
    assert kt.FULL_RATE_REUSE == 64 and kt.SPLIT_K_MIN > 64
    compute_s, _, tile = kt.gemm_time(1, 256, 256, 128, 0, R, _params(16), simt=True)
    assert tile == (64, 64, 1)
    assert compute_s == pytest.approx(2 * 64 * 64 * 128 / (R * 0.5))


def test_attention_causal_makespan():
    t = kt.FLASH_TILE
    per_tile = 2 * t * t * (64 + 64) / R
    # L = S = 2 tiles, one (batch, head): causal query tiles visit 1 and 2 key tiles.
    # With 2 units both run in one wave: the wave lasts as long as its longest tile (2), causal or not.
    c1, _ = kt.attention_time(1, 2 * t, 2 * t, 64, 64, True, 0, R, _params(2))
    n1, _ = kt.attention_time(1, 2 * t, 2 * t, 64, 64, False, 0, R, _params(2))
    assert c1 == pytest.approx(2 * per_tile) and n1 == pytest.approx(2 * per_tile)
    # One unit: two waves, 2 + 1 key tiles causal, 2 + 2 otherwise.
    c2, _ = kt.attention_time(1, 2 * t, 2 * t, 64, 64, True, 0, R, _params(1))
    n2, _ = kt.attention_time(1, 2 * t, 2 * t, 64, 64, False, 0, R, _params(1))
    assert c2 == pytest.approx(3 * per_tile) and n2 == pytest.approx(4 * per_tile)


def test_attention_decode_streams_kv():
    # One query row (decode): the padded query tile computes l/t of a full tile; K/V bytes bound it.
    t = kt.FLASH_TILE
    compute_s, memory_s = kt.attention_time(4, 1, 4 * t, 128, 128, False, 8e6, R, _params(4))
    assert compute_s == pytest.approx(4 * 2 * t * t * 256 / R / t)
    assert memory_s == pytest.approx(8e6 / B)


@pytest.mark.parametrize("op,ins,out,klass", [
    ("add", [(16, 4096), (16, 4096)], (16, 4096), "stream"),
    ("mul", [(16, 4096), (4096,)], (16, 4096), "strided"),  # broadcast operand: TensorIterator's generic path
    ("mul", [(16, 4096), (1,)], (16, 4096), "stream"),  # a scalar is not a broadcast stream
    ("mul", [(16, 4096), ()], (16, 4096), "stream"),
    ("softmax", [(16, 4096)], (16, 4096), "row"),
    ("reduce_mean", [(16, 4096)], (16, 1), "row"),
    ("concat", [(16, 64), (16, 64)], (16, 128), "strided"),
    ("cast", [(16, 64)], (16, 64), "strided"),
    ("gather", [(128, 64), (16,)], (16, 64), "stream"),
])
def test_stream_class(op, ins, out, klass):
    assert kt.stream_class(op, ins, out) == klass


def test_stream_memory_time_takes_the_class_bandwidth():
    prm = _params(4, floor_s=1e-6)
    assert kt.stream_memory_s(4e6, "stream", prm) == pytest.approx(4e6 / B)
    assert kt.stream_memory_s(4e6, "strided", prm) == pytest.approx(4e6 / (B / 2))
    assert kt.stream_memory_s(4e6, "row", prm) == pytest.approx(4e6 / (B / 4))


def test_a_broadcast_multiply_is_strided_and_pays_its_class_floor():
    """x[4096, 4096] * w[4096] (bf16) on h200: the strided class's bandwidth and floor; x * x reads x once."""
    import torch

    t = _target(kernel_floor_strided_us="3", memory_efficiency_strided="0.5")
    g = _graph(lambda x, w: x * w, (4096, 4096), (4096,))
    moved = (2 * 4096 * 4096 + 2 * 4096) + 2 * 4096 * 4096  # x and w read, the product written
    assert _device_s(g, t) == pytest.approx(moved / (t.hbm_bytes_per_s * 0.5) + 3e-6)
    square = _graph(lambda x: x * x, (4096, 4096))  # counted as two reads of x; one DRAM read feeds both
    expected = 2 * (2 * 4096 * 4096) / (t.hbm_bytes_per_s * t.memory_efficiency) + t.kernel_floor_us * 1e-6
    assert _device_s(square, t) == pytest.approx(expected)
    assert torch is not None


def _target(**over):
    from graphperf.target import load_target

    base = {"kernel_floor_us": "1", "matrix_floor_us": "3", "misaligned_matrix_factor": "0.125"}
    return load_target("h200", {**base, **over})


def _graph(fn, *shapes, dtype="bfloat16"):
    import torch

    from graphperf.api import capture
    from graphperf.passes import canonicalize

    class One(torch.nn.Module):
        def forward(self, *args):
            return fn(*args)

    dt = getattr(torch, dtype)
    return canonicalize(capture(One(), tuple(torch.empty(*s, dtype=dt, device="meta") for s in shapes))).graph


def _linear_graph(m, n, k, dtype="bfloat16"):
    import torch.nn.functional as F

    return _graph(F.linear, (m, k), (n, k), dtype=dtype)


def _device_s(graph, target):
    from graphperf.count import count
    from graphperf.project import project

    return sum(t.device_s for t in project(graph, count(graph), target) if t.device_s)


def test_projection_uses_the_kernel_model_and_the_floor():
    """A large bf16 GEMM on the h200 target with kernel parameters: waves of the best tile at the per-unit
    rate, plus the matrix floor; no launch term in device_s."""
    t = _target()
    m = n = k = 8192
    unit_rate = t.matrix_bf16_tflops * 1e12 * t.matrix_efficiency / t.compute_units
    best = min(-(-(-(-m // mt) * -(-n // nt)) // t.compute_units) * 2 * mt * nt * k
               / (unit_rate * min(1.0, mt * nt / (mt + nt) / kt.FULL_RATE_REUSE)) for mt, nt in kt.GEMM_TILES)
    assert _device_s(_linear_graph(m, n, k), t) == pytest.approx(best + 3e-6)


def test_misaligned_gemm_runs_at_the_factor():
    """N = 50257 (bf16 rows 100514 B apart, not a multiple of 16): the matrix rate times
    misaligned_matrix_factor; N = 50264 is aligned. Compute-bound shapes, so the ratio of the compute
    parts is the factor times the padding ratio."""
    t = _target(misaligned_matrix_factor="0.25")
    slow = _device_s(_linear_graph(8192, 50257, 768), t) - 3e-6
    fast = _device_s(_linear_graph(8192, 50264, 768), t) - 3e-6
    assert slow / fast == pytest.approx(4.0, rel=0.01)


def test_fp32_conv_routes_to_tf32_by_default():
    t = _target()
    assert t.allow_tf32_conv and not t.allow_tf32
    assert t.matrix_peak_flops("float32", "conv")[1] == "matrix_tf32_tflops"
    assert t.matrix_peak_flops("float32") is None
    assert t.with_overrides(allow_tf32_conv=False).matrix_peak_flops("float32", "conv") is None


def test_target_without_kernel_floor_keeps_the_roofline():
    from graphperf.target import load_target

    plain = load_target("h200", {"kernel_floor_us": "none"})
    assert kt.kernel_params(plain) is None
    g = _linear_graph(1024, 1024, 1024)
    flops = 2 * 1024 ** 3
    roof = flops / (plain.matrix_bf16_tflops * 1e12 * plain.matrix_efficiency)
    mem = 3 * 1024 * 1024 * 2 / (plain.hbm_bytes_per_s * plain.memory_efficiency)
    assert _device_s(g, plain) == pytest.approx(max(roof, mem))
