"""graphperf: FLOPs, bytes and projected latency for every node of a captured model graph.

The public API (pinned by tests/test_public_api.py):

- IR and counting: `Graph`, `Node`, `Value`, `TensorType`, `OpId`, `canonical`, `Cost`, `count`
- targets and projection: `Target`, `load_target`, `list_targets`, `project`
- pipeline: `ModelRequest`, `load_graph`, `analyze_graph`, `Report`, `ReportDiff` (`Report.compare`)
- one-call Python API: `analyze` (any model form -> `Report`), `capture` (-> `Graph`; the frontends
  package, which forwards calls to `graphperf.api.capture`)
- user extensions: `register_rule` / `unregister_rule` (a cost for an op reported as unknown),
  `register_pass` / `unregister_pass` / `registered_passes` (a rewrite run in every analysis)
- frontends (imported on first use; they pull in torch or onnx): `capture_module`,
  `capture_exported`, `load_pt2`, `capture_onnx`
- torch.compile: `last_reports` (the reports of the latest `torch.compile(backend="graphperf")`;
  the backend itself is found by torch through an entry point, no import needed)
- errors: `GraphperfError`, `UsageError`, `AnalysisError`, `RuleError` (what a cost rule raises for a node
  it does not model)
"""

from __future__ import annotations

from .version import __version__

from .cost import Cost
from .count import count
from .errors import AnalysisError, GraphperfError, RuleError, UsageError
from .ir import Graph, Node, OpId, TensorType, Value
from .ops import canonical
from .pipeline import ModelRequest, analyze_graph, load_graph
from .project import project
from .report.diff import ReportDiff
from .report.model import Report
from .target import Target, list_targets, load_target
from .api import analyze, register_pass, register_rule, registered_passes, unregister_pass, unregister_rule
from . import capture  # the frontends package, callable: graphperf.capture(model, ...) -> Graph (api.capture)

_LAZY = {
    "capture_module": "graphperf.capture.torch_export",
    "capture_exported": "graphperf.capture.torch_export",
    "load_pt2": "graphperf.capture.torch_export",
    "capture_onnx": "graphperf.capture.onnx_capture",
    "last_reports": "graphperf.compile_backend",
}

__all__ = [
    "AnalysisError", "Cost", "Graph", "GraphperfError", "ModelRequest", "Node", "OpId", "Report", "ReportDiff",
    "RuleError", "Target", "TensorType", "UsageError", "Value", "__version__", "analyze", "analyze_graph", "canonical",
    "capture", "capture_exported", "capture_module", "capture_onnx", "count", "last_reports", "list_targets",
    "load_graph", "load_pt2", "load_target", "project", "register_pass", "register_rule", "registered_passes",
    "unregister_pass", "unregister_rule",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphperf' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
