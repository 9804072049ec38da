"""`graphperf audit`: findings over a projected graph, each with a recommendation and the gain of the what-if
that implements it, actually run (`graphperf.passes.whatif`), ranked by severity and gain.

Checks live in graphperf/audit/checks/, one file each, registered like cost rules (`register_check`):
misaligned GEMM dimensions (padding), unfused attention and norm chains (fusion), float32 matrix work
(precision), launch-bound graphs (CUDA graphs or fusion), a model that does not fit (critical; devices and
fp8 weights), nodes without a cost rule (the latency is a lower bound). Output: a ranked terminal table, JSON
(``graphperf.audit/1``) and an HTML page (graphperf/audit/render.py).
"""

from .finding import AUDIT_SCHEMA, SEVERITIES, AuditResult, Finding
from .registry import CHECKS, register_check
from .run import audit, audit_graph

__all__ = ["AUDIT_SCHEMA", "SEVERITIES", "AuditResult", "Finding", "CHECKS", "register_check", "audit",
           "audit_graph"]
