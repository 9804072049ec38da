"""MLIR-level FLOPs against graph-level FLOPs for every models/ workload (tiny config, every phase).

Both levels come from the same torch.export program (`load_mlir` captures both). The expected
MLIR figure of every graph node is the graph-level rule's figure plus the differences that the
torch-mlir lowering really computes, each derived below (graphperf/mlir/__init__.py documents them):

- attention: none. torch-mlir lowers scaled_dot_product_attention itself (graphperf/mlir/lower.py keeps
  it out of PyTorch's decomposition table): plain attention to linalg (scale per score, softmax, two
  batch matmuls: exactly the graph-level rule's count), causal or grouped-query attention to
  tm_tensor.attention, which is not linalg and is costed by the graph-level rule (with a warning).
- layer_norm: torch-mlir's decomposition computes the mean and x - mean twice (once for the
  variance, once for the output): +2 per element, +1 divide per row.
- convolution bias: torch-mlir initialises the accumulator with the bias (a broadcast copy), so
  the bias add the graph level counts (one per output) is not an op: -1 per conv output.
- batch_norm after a convolution: none. It is folded into the convolution before lowering
  (graphperf/mlir/analyze.py, torch.fx's conv+bn fusion), as the graph level folds it.
- avg_pool over a window of one element: the divide by 1 is folded away (-1 per output).
- topk over an axis of length 1: folded away (the values are the input); the graph level counts
  its compares.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from graphperf.count import count
from graphperf.passes import canonicalize
from graphperf.pipeline import ModelRequest

from ..conftest import workload_cases

pytestmark = pytest.mark.slow  # about 1 s per workload (torch.export + torch-mlir lowering), 15 s in all



def _types(graph, names):
    return [None if n is None else graph.values[n].type for n in names]


def _expected(capture) -> tuple[dict[str, int], dict[str, int], int]:
    """Per graph node: expected MLIR flops; graph-level flops; graph-level matrix total."""
    canon = canonicalize(capture.graph_level).graph
    expected: dict[str, int] = {}
    full: dict[str, int] = {}
    matrix = 0
    for nc in count(canon):
        node, cost = nc.node, nc.cost
        assert cost is not None, nc.reason
        ins, outs = _types(canon, node.inputs), _types(canon, node.outputs)
        op = node.op.name
        full[node.name] = cost.flops
        matrix += cost.matrix_flops
        delta = 0
        if op == "layer_norm":
            delta = 2 * ins[0].numel + ins[0].numel // node.attrs["norm_numel"]
        elif op == "conv" and len(ins) > 2 and ins[2] is not None:
            delta = -outs[0].numel  # the bias is the accumulator's initial value: no add
        elif op == "avg_pool" and math.prod(node.attrs["kernel"]) == 1:
            delta = -outs[0].numel
        elif op == "topk" and ins[0].shape[node.attrs["axis"]] == 1:
            delta = -cost.flops  # top-1 of one element is the element: folded away by canonicalization
        expected[node.name] = cost.flops + delta
    return expected, full, matrix


@pytest.fixture(scope="module")
def captured():
    from graphperf.mlir.analyze import load_mlir

    cache = {}

    def get(name, phase):
        if (name, phase) not in cache:
            cache[(name, phase)] = load_mlir(ModelRequest(name, config="tiny", phase=phase))
        return cache[(name, phase)]

    return get


@pytest.mark.parametrize("name, phase", workload_cases())
def test_mlir_flops_match_graph_level(captured, name, phase):
    capture = captured(name, phase)
    expected, full, full_matrix = _expected(capture)
    per_node: dict[str, int] = defaultdict(int)
    matrix = 0
    for nc in count(canonicalize(capture.graph).graph):
        assert nc.cost is not None, f"{nc.node.name}: {nc.reason}"
        per_node[nc.node.attrs.get("graph_node", "")] += nc.cost.flops
        matrix += nc.cost.matrix_flops
    # every linalg op maps back to a graph node; no arithmetic is left unattributed
    assert per_node.get("", 0) == 0
    # contractions: exactly the graph level's matmul/conv/attention work
    assert matrix == full_matrix
    # every graph node: the graph-level rule plus the derived decomposition differences, exactly
    mismatched = {k: (expected.get(k, 0), per_node.get(k, 0)) for k in set(expected) | set(per_node)
                  if expected.get(k, 0) != per_node.get(k, 0)}
    assert mismatched == {}
    total, graph_total = sum(per_node.values()), sum(full.values())
    # the issue's acceptance: every workload within 2% (0.9% at most, measured: resnet50's conv biases)
    assert total == pytest.approx(graph_total, rel=0.02)


def test_unlowered_ops_fall_back_to_graph_level_rules_with_a_warning(captured):
    # torch-mlir lowers topk and scatter to TMTensor (tm_tensor.sort / tm_tensor.scatter), not linalg
    from graphperf.mlir.analyze import analyze_mlir
    from graphperf.target import load_target

    capture = captured("mixtral-8x7b", "decode")
    report = analyze_mlir(capture, load_target("h100"))
    warnings = report.model["warnings"]
    assert any(w.startswith("tm_tensor.sort (graph node topk,") for w in warnings)
    assert report.totals["coverage"] == 1.0 and report.totals["unknown_ops"] == {}
    canon = canonicalize(capture.graph_level).graph
    graph_topk = {nc.node.name: nc.cost.flops for nc in count(canon) if nc.node.op.name == "topk"}
    from graphperf.mlir.analyze import rollup_by_graph_node

    rolled = {row["name"]: row["flops"] for row in rollup_by_graph_node(report)}
    lowered_topk = {k: v for k, v in graph_topk.items() if k in rolled}  # top-1 of one element folds away
    assert len(lowered_topk) == 2 and {k: rolled[k] for k in lowered_topk} == lowered_topk
