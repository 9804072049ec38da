"""The ONNX path: a models/ workload exported to ONNX, lowered by torch-mlir's ONNX importer, against the
graph-level count of the same file (the exporter already decomposes attention into matmuls and softmax,
so both levels count the full score matrix)."""

from __future__ import annotations

import pytest
import torch

from graphperf.pipeline import ModelRequest, analyze_graph, load_graph
from graphperf.target import load_target

pytestmark = pytest.mark.slow  # ONNX export: a few seconds per workload


@pytest.mark.parametrize("name", ["gpt2", "bert-base", "resnet50", "llama3-8b"])
def test_onnx_file_mlir_level_matches_graph_level(name, tmp_path):
    from graphperf import models
    from graphperf.mlir.analyze import analyze_mlir, load_mlir

    wl = models.build(name, config="tiny", dtype="float32", device="cpu")
    path = str(tmp_path / f"{name}.onnx")
    torch.onnx.export(wl.module, wl.args, path, dynamo=True, opset_version=18, verbose=False)
    target = load_target("h100")
    graph, info = load_graph(ModelRequest(path))
    level = analyze_graph(graph, target, info).totals
    capture = load_mlir(ModelRequest(path))
    mlir = analyze_mlir(capture, target).totals
    assert capture.warnings == [] and mlir["coverage"] == 1.0
    assert mlir["matrix_flops"] == level["matrix_flops"]
    assert mlir["flops"] == pytest.approx(level["flops"], rel=0.02)
    # every linalg op names the ONNX node it came from
    names = {n.name for n in graph.nodes}
    origins = {n.attrs.get("graph_node") for n in capture.graph.nodes if n.op.name == "linalg"}
    assert origins <= names
