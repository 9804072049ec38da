"""A lowering failure names the op and falls back to the graph-level rules for that part."""

from __future__ import annotations

import pytest
import torch

from graphperf.count import count
from graphperf.mlir import lower
from graphperf.mlir.analyze import analyze_mlir, load_mlir
from graphperf.passes import canonicalize
from graphperf.target import load_target


class MatmulRelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(64, 32))

    def forward(self, x):
        return torch.relu(x @ self.w)


@pytest.fixture
def pt2(tmp_path):
    path = tmp_path / "mm_relu.pt2"
    torch.export.save(torch.export.export(MatmulRelu(), (torch.randn(8, 64),), strict=False), str(path))
    return str(path)


def test_unlowerable_ops_are_named_and_counted_with_graph_level_rules(monkeypatch, pt2):
    from graphperf.pipeline import ModelRequest

    # force the failure: the full pipeline's contract check fails, and the conversions leave every
    # ATen compute op unconverted (no convert-torch-to-linalg)
    monkeypatch.setattr(lower, "_TO_LINALG_FULL", "builtin.module(torch-verify-linalg-on-tensors-backend-contract)")
    monkeypatch.setattr(lower, "_TO_LINALG", "builtin.module(func.func(convert-torch-to-arith), canonicalize)")
    capture = load_mlir(ModelRequest(pt2))
    assert {op for op, _ in capture.lowered.unlowered} >= {"torch.aten.mm", "torch.aten.relu"}
    report = analyze_mlir(capture, load_target("h100"))
    warnings = report.model["warnings"]
    assert any(w.startswith("torch.aten.mm (graph node matmul") for w in warnings), warnings
    assert any(w.startswith("torch.aten.relu (graph node relu") for w in warnings), warnings
    # every node fell back: the totals are the graph level's
    graph_level = [nc.cost for nc in count(canonicalize(capture.graph_level).graph)]
    assert report.totals["flops"] == sum(c.flops for c in graph_level) == 2 * 8 * 64 * 32 + 8 * 32
    assert report.totals["coverage"] == 1.0


def test_without_a_failure_nothing_falls_back(pt2):
    from graphperf.pipeline import ModelRequest

    capture = load_mlir(ModelRequest(pt2))
    assert capture.lowered.unlowered == [] and capture.warnings == []
    sources = [n.source_op for n in capture.graph.nodes]
    assert "linalg.matmul" in sources
