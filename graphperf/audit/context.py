"""What every audit check reads: the captured graph, the target, the mode, the report the audit started from,
and `whatif`, which runs a what-if on the same graph (`graphperf.passes.whatif.whatif`, as `graphperf whatif`
does) once per spec and returns the `Finding` fields its before/after reports give."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..ir import Graph

__all__ = ["AuditContext"]


@dataclass
class AuditContext:
    """The inputs of every check; `base` is the report of the graph as captured, in `mode`."""

    graph: Graph
    info: Mapping[str, Any]
    target: Any
    mode: str
    base: Any  # Report
    _runs: dict = field(default_factory=dict, repr=False)

    def whatif(self, **spec: Any):
        """`WhatIfResult` of `graphperf.passes.whatif.whatif(graph, target, info, mode=mode, **spec)`, run once per
        spec. `spec` takes whatif's keywords (fuse, precision, pad, ...), already parsed."""
        key = repr(sorted(spec.items()))
        if key not in self._runs:
            from graphperf.passes.whatif import whatif

            self._runs[key] = whatif(self.graph, self.target, self.info, mode=self.mode, **spec)
        return self._runs[key]
