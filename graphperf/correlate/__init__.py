"""Correlate projections with measured profiles: onnxruntime profiling, per-node matching, error statistics.

`profile_onnx` runs a model under onnxruntime with profiling; `read_profile` parses the profile;
`correlate_onnx` projects the model on a target and compares it node by node (see `match`);
`error_stats` holds the formulas; `trace.correlation_trace` builds measured and projected Chrome-trace tracks.
"""

from .match import Correlation, Row, correlate_onnx
from .ort_profile import profile_onnx
from .reader import NodeTiming, Profile, onnx_nodes_of, read_profile
from .stats import error_stats

__all__ = ["profile_onnx", "read_profile", "onnx_nodes_of", "correlate_onnx", "error_stats", "Correlation", "Row",
           "Profile", "NodeTiming"]
