"""quantized_matmul: the GEMM of a matmul plus the dequantization of each stored weight, at stored bytes."""

import pytest

from graphperf.cost import Cost

from ._util import T, bad, case, check_cases, check_errors, ops_in

m, k, n, block = 8, 64, 32, 16
a, out = T(m, k, dtype="float16"), T(m, n, dtype="float16")
packed = T(n, k // block, block // 2, dtype="uint8")  # MatMulNBits 4-bit: [N, blocks, blob bytes]
scales, zeros = T(n * k // block, dtype="float16"), T(n * (k // block) // 2, dtype="uint8")
bias = T(n, dtype="float16")
A, OUT, W4 = 2 * m * k, 2 * m * n, n * k // 2  # bytes of a (fp16), out (fp16), the 4-bit weights
S, Z, BIAS = 2 * n * k // block, n * (k // block) // 2, 2 * n

CASES = [
    # 2MKN on the matrix unit + 2 per weight ((q - zp) * scale), weights read at 4 bits
    case("quantized_matmul", [a, packed, scales], [out], {},
         Cost(2 * m * n * k + 2 * k * n, 2 * m * n * k, 0, A + W4 + S, OUT), "nbits"),
    case("quantized_matmul", [a, packed, scales, zeros], [out], {},
         Cost(2 * m * n * k + 2 * k * n, 2 * m * n * k, 0, A + W4 + S + Z, OUT), "zero-points"),
    case("quantized_matmul", [a, packed, scales, None, bias], [out], {},
         Cost(2 * m * n * k + 2 * k * n + m * n, 2 * m * n * k, 0, A + W4 + S + BIAS, OUT), "bias"),
    # decode: one row; the dequantization equals the GEMM's multiply-adds
    case("quantized_matmul", [T(1, 1, k, dtype="float16"), packed, scales], [T(1, 1, n, dtype="float16")], {},
         Cost(2 * n * k + 2 * k * n, 2 * n * k, 0, 2 * k + W4 + S, 2 * n), "gemv"),
]

ERRORS = [bad("quantized_matmul", [a], [out], {}, "missing required input 1", "no-weights")]

COVERED_OPS = ops_in(CASES)


@pytest.mark.parametrize("op, ins, outs, attrs, expected", CASES)
def test_quantized_matmul(op, ins, outs, attrs, expected):
    check_cases(op, ins, outs, attrs, expected)


@pytest.mark.parametrize("op, ins, outs, attrs, match", ERRORS)
def test_quantized_matmul_rejects(op, ins, outs, attrs, match):
    check_errors(op, ins, outs, attrs, match)
