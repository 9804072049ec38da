"""graphperf: FLOPs, bytes and projected latency for every node of a captured model graph.

The public API (pinned by tests/test_public_api.py):

- IR and counting: `Graph`, `Node`, `Value`, `TensorType`, `OpId`, `canonical`, `Cost`, `count`
- targets and projection: `Target`, `load_target`, `list_targets`, `project`
- pipeline: `ModelRequest`, `load_graph`, `analyze_graph`, `Report`
- frontends (imported on first use; they pull in torch or onnx): `capture_module`,
  `capture_exported`, `load_pt2`, `capture_onnx`
- errors: `GraphperfError`, `UsageError`, `AnalysisError`
"""

from __future__ import annotations

__version__ = "0.1.0"

from .cost import Cost
from .count import count
from .errors import AnalysisError, GraphperfError, UsageError
from .ir import Graph, Node, OpId, TensorType, Value
from .ops import canonical
from .pipeline import ModelRequest, analyze_graph, load_graph
from .project import project
from .report.model import Report
from .target import Target, list_targets, load_target

_LAZY = {
    "capture_module": "graphperf.capture.torch_export",
    "capture_exported": "graphperf.capture.torch_export",
    "load_pt2": "graphperf.capture.torch_export",
    "capture_onnx": "graphperf.capture.onnx_capture",
}

__all__ = [
    "AnalysisError", "Cost", "Graph", "GraphperfError", "ModelRequest", "Node", "OpId", "Report", "Target",
    "TensorType", "UsageError", "Value", "__version__", "analyze_graph", "canonical", "capture_exported",
    "capture_module", "capture_onnx", "count", "list_targets", "load_graph", "load_pt2", "load_target",
    "project",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphperf' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
