"""`audit`: capture a model, project it, run every registered check and rank the findings."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..errors import UsageError
from .context import AuditContext
from .finding import AuditResult
from .registry import CHECKS

__all__ = ["audit", "audit_graph"]


def audit_graph(graph, target, info, mode: str = "graph", checks: Optional[Sequence[str]] = None) -> AuditResult:
    """Run `checks` (all registered ones by default, in order) on a captured graph; see `audit`."""
    from . import checks as _registered  # noqa: F401  (importing the package registers the checks)
    from ..pipeline import analyze_graph

    names = list(CHECKS) if checks is None else list(checks)
    unknown = [c for c in names if c not in CHECKS]
    if unknown:
        raise UsageError(f"audit check {unknown[0]!r} does not exist; checks: {', '.join(CHECKS)}")
    base = analyze_graph(graph, target, dict(info), mode=mode)
    ctx = AuditContext(graph, info, target, mode, base)
    findings = [f for name in names for f in CHECKS[name](ctx)]
    return AuditResult(base.model, target, mode, base.totals["latency_s"], findings, names)


def audit(model: Any, target: Any = "h100", *, mode: str = "graph", checks: Optional[Sequence[str]] = None,
          config: str = "full", phase: Optional[str] = None, batch: Optional[int] = None,
          seq: Optional[int] = None, kv_len: Optional[int] = None, dtype: Optional[str] = None,
          attention: str = "sdpa", **dims: int) -> AuditResult:
    """Audit a model: its findings, each with the gain of the what-if that implements its recommendation.

    Parameters
    ----------
    model : str
        An .onnx or .pt2 path, or a workload name (`graphperf models`).
    target : str or Target
        A bundled target name, a .toml path or a `Target`.
    mode : str
        The execution mode of every projection (``graph``, ``eager``, ``compiled``, ``reduce-overhead``).
    checks : sequence of str, optional
        The checks to run (default: every registered one, `graphperf.audit.CHECKS`).
    config, phase, batch, seq, kv_len, dtype, attention, **dims
        The workload's shape, as for `graphperf.analyze` (``attention="eager"``: the unfused attention chain).

    Returns
    -------
    AuditResult
        Ranked findings; ``to_dict()`` is the ``graphperf.audit/1`` document.

    Example
    -------
    >>> import graphperf.audit
    >>> result = graphperf.audit.audit("llama3-8b", "h200", config="tiny", phase="decode", batch=1, mode="eager")
    >>> [f.check for f in result.findings][:1]
    ['launch_bound']
    >>> result.findings[0].gain_s > 0
    True
    """
    from ..api import _target
    from ..pipeline import ModelRequest, load_graph

    tgt = _target(target)
    graph, info = load_graph(ModelRequest(model, config=config, phase=phase, batch=batch, seq=seq, kv_len=kv_len,
                                          dtype=dtype, dims=dims, attention=None if attention == "sdpa" else attention))
    return audit_graph(graph, tgt, info, mode, checks)
