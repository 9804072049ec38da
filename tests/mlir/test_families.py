"""One test per linalg op family, lowered from PyTorch through torch-mlir; expectations from formulas."""

import torch

from graphperf.cost import Cost
from graphperf.count import count

from ._util import counted, graph_of, only

F32 = 4


class Fn(torch.nn.Module):
    def __init__(self, fn, *params):
        super().__init__()
        self.fn = fn
        self.params = torch.nn.ParameterList(params)

    def forward(self, *args):
        return self.fn(*args, *self.params)


def test_matmul():
    m, k, n = 8, 32, 16
    _, pairs = counted(Fn(torch.mm), torch.randn(m, k), torch.randn(k, n))
    node, cost = only(pairs, "linalg.matmul")
    assert node.attrs["domain"] == (m, n, k)
    assert node.attrs["iterator_types"] == ("parallel", "parallel", "reduction")
    # the zero fill of C is the accumulator's initial value: folded, free
    assert [p[0].op.name for p in pairs if p[0].source_op == "linalg.fill"] == ["view"]
    assert cost == Cost(2 * m * n * k, 2 * m * n * k, 0, F32 * (m * k + k * n), F32 * m * n)


def test_batch_matmul():
    b, m, k, n = 3, 8, 32, 16
    _, pairs = counted(Fn(torch.bmm), torch.randn(b, m, k), torch.randn(b, k, n))
    node, cost = only(pairs, "linalg.batch_matmul")
    assert cost == Cost(2 * b * m * n * k, 2 * b * m * n * k, 0, F32 * b * (m * k + k * n), F32 * b * m * n)


def test_conv2d():
    n, cin, cout, h, w, kh, kw = 1, 4, 8, 10, 10, 3, 3
    x = torch.randn(n, cin, h, w)
    weight = torch.nn.Parameter(torch.randn(cout, cin, kh, kw))
    _, pairs = counted(Fn(lambda x, wt: torch.nn.functional.conv2d(x, wt), weight), x)
    node, cost = only(pairs, "linalg.conv_2d")
    ho, wo = h - kh + 1, w - kw + 1
    flops = 2 * n * cout * ho * wo * cin * kh * kw
    # the input window map (d + kd) reads the whole input once; the weight once; the output written once
    assert cost == Cost(flops, flops, 0, F32 * (n * cin * h * w + cout * cin * kh * kw), F32 * n * cout * ho * wo)


def test_elementwise_with_broadcast():
    m, n = 8, 16
    _, pairs = counted(Fn(torch.add), torch.randn(m, n), torch.randn(n))
    node, cost = only(pairs, "linalg.generic")
    # one addf per point; the [n] operand (map (d0, d1) -> (d1)) is read once, at its own size
    assert cost == Cost(m * n, 0, 0, F32 * (m * n + n), F32 * m * n)


def test_transcendental_counted_apart():
    m, n = 8, 16
    _, pairs = counted(Fn(torch.exp), torch.randn(m, n))
    node, cost = only(pairs, "linalg.generic")
    assert (cost.flops, cost.transcendentals) == (0, m * n)


def test_reduction():
    m, n = 8, 16
    _, pairs = counted(Fn(lambda x: x.sum(-1)), torch.randn(m, n))
    node, cost = only(pairs, "linalg.generic")
    assert node.attrs["iterator_types"] == ("parallel", "reduction")
    # m x n additions into a filled accumulator (the fill is folded into the kernel)
    assert cost == Cost(m * n, 0, 0, F32 * m * n, F32 * m)


def test_transpose_is_a_layout_op():
    # a body that only yields its input through a permuted map: `transpose`, which canonicalization
    # turns into a view as at the graph level (kernels read permuted operands in place)
    m, n = 8, 16
    _, pairs = counted(Fn(lambda x: x.t() * 2), torch.randn(m, n))
    node, cost = only(pairs, "linalg.transpose")
    assert node.op.name == "transpose" and cost == Cost(0, 0, 0, F32 * m * n, F32 * m * n)
    assert [p[1].flops for p in pairs if p[0].op.name == "linalg"] == [m * n]


def test_relu_is_one_flop_per_element():
    # torch-mlir lowers relu to cmpf + select: one max, as the graph level counts it
    m, n = 8, 16
    _, pairs = counted(Fn(torch.relu), torch.randn(m, n))
    node, cost = only(pairs, "linalg.generic")
    assert cost.flops == m * n


FILL_THEN_INSERT = """
func.func @main(%a: tensor<8x16xf32>) -> tensor<16x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16x16xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<16x16xf32>) -> tensor<16x16xf32>
  %r = tensor.insert_slice %a into %f[0, 0] [8, 16] [1, 1] : tensor<8x16xf32> into tensor<16x16xf32>
  return %r : tensor<16x16xf32>
}
"""


def test_fill_that_is_not_an_accumulator_is_a_memset_write_and_insert_slice_copies_the_slice():
    graph = graph_of(FILL_THEN_INSERT)
    pairs = [(nc.node, nc.cost) for nc in count(graph)]
    assert [(p[0].source_op, p[0].op.name) for p in pairs] == [("linalg.fill", "fill"),
                                                               ("tensor.insert_slice", "linalg")]
    assert pairs[0][1] == Cost(0, 0, 0, 0, F32 * 16 * 16)  # memset: writes the whole buffer
    assert pairs[1][1] == Cost(0, 0, 0, F32 * 8 * 16, F32 * 8 * 16)  # reads and writes the slice only
    assert graph.meta["mlir_classified_ops"] == {"arith.constant": 1, "tensor.empty": 1}


def test_body_op_without_a_convention_is_unknown_not_zero():
    text = """
#map = affine_map<(d0) -> (d0)>
func.func @main(%a: tensor<8xf32>) -> tensor<8xi1> {
  %e = tensor.empty() : tensor<8xi1>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]}
      ins(%a : tensor<8xf32>) outs(%e : tensor<8xi1>) {
  ^bb0(%in: f32, %out: i1):
    %y = math.isnan %in : f32
    linalg.yield %y : i1
  } -> tensor<8xi1>
  return %r : tensor<8xi1>
}
"""
    (nc,) = count(graph_of(text))
    assert nc.cost is None and "math.isnan" in nc.reason
