"""IR and Cost value types."""

import pytest

from graphperf.cost import Cost, io_bytes
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical, is_canonical


def test_tensor_type_bytes_follow_dtype_width():
    assert TensorType((4, 8), "bfloat16").nbytes == 4 * 8 * 2
    assert TensorType((4, 8), "float32").nbytes == 4 * 8 * 4
    assert TensorType((3,), "float4_e2m1").nbytes == 2  # 12 bits round up to 2 bytes
    assert TensorType((), "int64").numel == 1


def test_tensor_type_rejects_bad_shapes_and_dtypes():
    with pytest.raises(ValueError):
        TensorType((2, -1), "float32")
    with pytest.raises(KeyError):
        TensorType((2,), "float33")


def test_cost_adds_fieldwise_and_zero_is_identity():
    a = Cost(flops=10, matrix_flops=8, transcendentals=1, bytes_read=4, bytes_written=2)
    b = Cost(flops=1, bytes_read=1)
    assert a + b == Cost(11, 8, 1, 5, 2)
    assert a + Cost.zero() == a
    assert (a + b).vector_flops == 3


def test_cost_rejects_matrix_flops_above_flops():
    with pytest.raises(ValueError):
        Cost(flops=1, matrix_flops=2)


def test_io_bytes_reads_inputs_and_writes_outputs_once():
    t = TensorType((2, 2), "float32")
    assert io_bytes([t, None, t], [t]) == Cost(bytes_read=32, bytes_written=16)


def test_graph_checks_topological_order_and_builds_digraph():
    t = TensorType((2,), "float32")
    values = {"x": Value("x", t, "input"), "y": Value("y", t, producer="n1"), "z": Value("z", t, producer="n2")}
    n1 = Node("n1", canonical("relu"), "Relu", ("x",), ("y",))
    n2 = Node("n2", canonical("exp"), "Exp", ("y",), ("z",))
    g = Graph("g", [n1, n2], values, outputs=["z"])
    assert list(g.digraph().edges) == [("n1", "n2")]
    assert g.consumers() == {"x": ["n1"], "y": ["n2"]}
    with pytest.raises(ValueError):
        Graph("bad", [n2, n1], values)


def test_canonical_ops_are_interned_and_unknown_names_raise():
    assert canonical("matmul") is canonical("matmul")
    assert is_canonical(canonical("matmul"))
    with pytest.raises(KeyError):
        canonical("not_an_op")
