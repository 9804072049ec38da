"""One sweep point's figures: capture a (workload, shape) once (cached on disk), count it once, then project it
on each target variant with the very functions `graphperf analyze` uses (`project`, `simulate`), so a point's
``latency_s`` is what ``graphperf analyze`` prints for the same workload, shape, mode and ``--set`` values.

The disk cache holds the captured graph keyed by what determines it (workload, shape, dtype, attention, and the
graphperf and torch versions); a changed key is a new entry, never a stale hit.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from typing import Any, Mapping, Optional

__all__ = ["COLUMNS", "Prepared", "prepare", "evaluate", "figures_of", "cache_dir"]

#: The figures of every point, after its axes (names as in a report's totals).
COLUMNS = ("latency_s", "device_s", "host_s", "idle_s", "kernels", "launch_bound", "flops", "matrix_flops", "bytes",
           "weight_bytes", "peak_activation_bytes", "memory_needed_bytes", "fits", "coverage")


def cache_dir(path: Optional[str] = None) -> str:
    """Where captured graphs are cached: `path`, else $GRAPHPERF_CACHE_DIR, else ~/.cache/graphperf/graphs."""
    return path or os.environ.get("GRAPHPERF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "graphperf", "graphs")


@dataclass
class Prepared:
    """A captured, canonical, counted graph and its target-independent totals."""

    graph: Any
    info: dict
    counts: list
    ops: list
    work: dict  # flops, matrix_flops, bytes, weight_bytes, peak_activation_bytes, coverage


def _request(shape: Mapping[str, Any]):
    from ..pipeline import ModelRequest

    attention = shape.get("attention")
    return ModelRequest(shape["workload"], config=shape.get("config", "full"), phase=shape.get("phase"),
                        batch=shape.get("batch"), seq=shape.get("seq"), kv_len=shape.get("kv_len"),
                        dtype=shape.get("dtype"), attention=None if attention in (None, "sdpa") else attention)


def _key(shape: Mapping[str, Any]) -> str:
    import torch

    from ..version import __version__

    what = {**{k: shape.get(k) for k in sorted(shape)}, "graphperf": __version__, "torch": torch.__version__}
    if os.path.isfile(str(shape["workload"])):
        st = os.stat(shape["workload"])
        what["file"] = [os.path.abspath(shape["workload"]), st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def prepare(shape: Mapping[str, Any], cache: Optional[str] = None) -> Prepared:
    """Capture (or load from the disk cache), canonicalize and count the graph of `shape`."""
    from ..count import count
    from ..passes import canonicalize, peak_activation_memory
    from ..pipeline import load_graph

    path = os.path.join(cache_dir(cache), _key(shape) + ".pkl")
    graph = info = None
    if os.path.isfile(path):
        try:
            with open(path, "rb") as fh:
                graph, info = pickle.load(fh)
        except Exception:  # a torn or foreign file: capture again
            graph = None
    if graph is None:
        graph, info = load_graph(_request(shape))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump((graph, info), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    canon = canonicalize(graph).graph
    counts = count(canon)
    known = [nc.cost for nc in counts if nc.cost is not None]
    work = {"flops": sum(c.flops for c in known), "matrix_flops": sum(c.matrix_flops for c in known),
            "bytes": sum(c.bytes_read + c.bytes_written for c in known),
            "weight_bytes": sum(v.type.nbytes for v in canon.weights() if v.type is not None),
            "peak_activation_bytes": peak_activation_memory(canon).bytes,
            "coverage": len(known) / len(counts) if counts else 1.0}
    return Prepared(canon, dict(info), counts, [nc.node.op.name for nc in counts], work)


def evaluate(prep: Prepared, target, mode: str) -> dict[str, Any]:
    """The `COLUMNS` of `prep` on `target` in execution `mode` (a compiled mode fuses for this target first)."""
    from ..execution import FUSED_MODES, simulate
    from ..project import project
    if mode in FUSED_MODES:  # the fused graph depends on the target (on-chip capacity): project it as analyze does
        from ..pipeline import analyze_graph

        t = analyze_graph(prep.graph, target, prep.info, mode=mode).totals
        return {k: t[k] for k in COLUMNS}
    return figures_of(prep, target, simulate(project(prep.graph, prep.counts, target), target, mode, prep.ops).totals)


def figures_of(prep, target, ex: dict[str, Any]) -> dict[str, Any]:
    """A point's `COLUMNS` from its queue totals and the shape's target-independent work."""
    from ..report.memory_fit import memory_fit

    fit = memory_fit(prep.work["weight_bytes"], prep.work["peak_activation_bytes"], getattr(target, "memory_gb", None))
    return {"latency_s": ex["latency_s"], "device_s": ex["device_s"], "host_s": ex["host_s"], "idle_s": ex["idle_s"],
            "kernels": int(ex["kernels"]), "launch_bound": bool(ex["launch_bound"]), **{k: prep.work[k] for k in (
                "flops", "matrix_flops", "bytes", "weight_bytes", "peak_activation_bytes")},
            "memory_needed_bytes": fit["memory_needed_bytes"], "fits": fit["fits"], "coverage": prep.work["coverage"]}
