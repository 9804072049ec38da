"""The curated public API: what `import graphperf` offers is deliberate."""

import subprocess
import sys

import graphperf

PUBLIC = {
    "AnalysisError", "Cost", "Graph", "GraphperfError", "ModelRequest", "Node", "OpId", "Report", "ReportDiff",
    "RuleError", "Target", "TensorType", "UsageError", "Value", "__version__", "analyze", "analyze_graph", "canonical",
    "capture", "capture_exported", "capture_module", "capture_onnx", "count", "last_reports", "list_targets",
    "load_graph", "load_pt2", "load_target", "project", "register_pass", "register_rule", "registered_passes",
    "unregister_pass", "unregister_rule",
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


def test_capture_stays_callable_after_its_frontends_are_imported():
    # graphperf.capture is both the frontends package and the capture function
    import graphperf.capture.fx_graph  # noqa: F401
    import graphperf.capture.torch_export  # noqa: F401

    assert callable(graphperf.capture) and graphperf.capture.torch_export.capture_module is graphperf.capture_module
    graph = graphperf.capture("gpt2", config="tiny", dtype="float32")
    assert isinstance(graph, graphperf.Graph) and graph.meta["model"]["name"] == "gpt2"


def test_importing_graphperf_imports_neither_torch_nor_onnx():
    code = "import sys, graphperf; graphperf.analyze; graphperf.capture; print(sorted({'torch', 'onnx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
