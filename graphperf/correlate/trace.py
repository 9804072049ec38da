"""A Chrome/Perfetto trace with two tracks: measured (onnxruntime node or torch.profiler op medians) and projected (the
target), each laying the correlated rows end to end in graph order, so the two timelines can be
compared side by side. Unmatched profiled nodes follow on the measured track (category
``unmatched``). Times are microseconds, as the trace format requires."""

from __future__ import annotations

import json

from .match import Correlation

__all__ = ["correlation_trace", "write_trace"]


def correlation_trace(c: Correlation) -> dict:
    events = [{"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": f"measured ({c.measured_by})"}},
              {"ph": "M", "name": "process_name", "pid": 2, "tid": 0, "args": {"name": f"projected ({c.target})"}}]
    t_meas = t_proj = 0.0
    for r in c.rows:
        args = {"nodes": r.nodes, "profiled_as": r.events, "bound": r.bound, "ratio": r.ratio}
        events.append({"ph": "X", "cat": r.op, "name": r.name, "pid": 1, "tid": 0, "ts": t_meas,
                       "dur": r.measured_s * 1e6, "args": args})
        t_meas += r.measured_s * 1e6
        if r.projected_s is not None:
            events.append({"ph": "X", "cat": r.op, "name": r.name, "pid": 2, "tid": 0, "ts": t_proj,
                           "dur": r.projected_s * 1e6, "args": args})
            t_proj += r.projected_s * 1e6
    for u in c.unmatched:
        events.append({"ph": "X", "cat": "unmatched", "name": u["name"], "pid": 1, "tid": 0, "ts": t_meas,
                       "dur": u["measured_s"] * 1e6, "args": {"op": u["op"], "reason": u["reason"]}})
        t_meas += u["measured_s"] * 1e6
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"model": c.model, "target": c.target, "stats": c.stats}}


def write_trace(c: Correlation, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(correlation_trace(c), fh, indent=0)
