"""The curated public API: what `import graphperf` offers is deliberate."""

import graphperf

PUBLIC = {
    "AnalysisError", "Cost", "Graph", "GraphperfError", "ModelRequest", "Node", "OpId", "Report", "Target",
    "TensorType", "UsageError", "Value", "__version__", "analyze_graph", "canonical", "capture_exported",
    "capture_module", "capture_onnx", "count", "list_targets", "load_graph", "load_pt2", "load_target",
    "project",
}


def test_all_is_pinned_and_every_name_resolves():
    assert set(graphperf.__all__) == PUBLIC
    for name in graphperf.__all__:
        assert getattr(graphperf, name) is not None


def test_python_api_runs_the_pipeline():
    graph, info = graphperf.load_graph(graphperf.ModelRequest("gpt2", config="tiny", dtype="float32"))
    report = graphperf.analyze_graph(graph, graphperf.load_target("a100"), info)
    assert report.totals["coverage"] == 1.0
    assert report.totals["matrix_flops"] > 0
