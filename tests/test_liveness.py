"""Peak live activation memory: allocation at the producer, release after the last consumer."""

from __future__ import annotations

from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical
from graphperf.passes import peak_activation_memory


def _chain():
    # x -> a = relu(x) -> v = view(a) -> b = exp(v) -> c = add(b, x); weights are ignored.
    t = TensorType((1024,), "float32")  # 4096 bytes
    w = TensorType((10_000,), "float32")
    values = {
        "x": Value("x", t, "input"), "w": Value("w", w, "weight"),
        "a": Value("a", t, producer="relu"), "v": Value("v", t, producer="view"),
        "b": Value("b", t, producer="exp"), "c": Value("c", t, producer="add"),
    }
    nodes = [
        Node("relu", canonical("relu"), "relu", ("x",), ("a",)),
        Node("view", canonical("view"), "view", ("a",), ("v",)),
        Node("exp", canonical("exp"), "exp", ("v",), ("b",)),
        Node("add", canonical("add"), "add", ("b", "x"), ("c",)),
    ]
    return Graph("chain", nodes, values, outputs=["c"]), t.nbytes


def test_peak_counts_live_activations_and_views_alias():
    graph, size = _chain()
    peak = peak_activation_memory(graph)
    # while exp runs: x (needed by add), a (aliased by v, read by exp) and b are live; the view adds nothing.
    assert peak.bytes == 3 * size
    assert peak.at_node == "exp"


def test_weights_are_not_activations():
    graph, size = _chain()
    assert peak_activation_memory(graph).bytes < graph.values["w"].type.nbytes
