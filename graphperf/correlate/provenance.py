"""Does a measured profile belong to the projected model? The checks `correlate` runs before it reports.

Guarantees:
- onnxruntime profiles: `graphperf profile` records the model it ran (absolute path, size in bytes,
  sha256: `model_fingerprint`) and the dims it bound. `onnx_profile_dims` returns the dims to project
  at: the recorded ones, with the user's `--dim` values where they agree. A `--dim` that differs from
  the recorded value, or a model file that differs from the recorded one (by sha256 where recorded,
  else by file name and size, else by file name), is a one-line `UsageError` that says what differs,
  how it was compared, and what to run instead. A profile without graphperf's metadata (onnxruntime's
  own ``enable_profiling``) is not checked here (its node names still have to match the model).
- torch.profiler traces: `check_kineto_trace` refuses a trace whose top-level ops with measured time
  mostly match no graph node (fewer than `MIN_MATCHED` of them, or of their time), a models/ workload
  trace whose unmatched ops read as other --batch/--seq/--kv-len values, and a trace whose
  tensor inputs are of another floating-point dtype than the graph's (the most common one on each
  side; traces without ``Input type`` are not checked for dtypes). The error names the first
  mismatching ops (traced shapes or dtypes against the graph node of the same op at the same
  occurrence) and, for a models/ workload, the ``--batch/--seq/--kv-len/--dtype`` values that would
  match where they can be read off the traced shapes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from typing import Any, Mapping, Optional

from ..dtypes import is_float
from ..errors import UsageError
from .events import aten_name

__all__ = ["model_fingerprint", "onnx_profile_dims", "check_kineto_trace", "MIN_MATCHED"]

MIN_MATCHED = 0.5  # share of a trace's timed top-level ops, and of their time, that must match graph nodes
_SHOWN = 2  # mismatching ops named in an error


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_fingerprint(path: str) -> dict[str, Any]:
    """What a profile records of the model file it ran: ``model`` (absolute path), ``model_bytes``,
    ``model_sha256`` (of the .onnx file itself, not of external data)."""
    return {"model": os.path.abspath(path), "model_bytes": os.path.getsize(path), "model_sha256": _sha256(path)}


def _dims_text(dims: Mapping[str, int], prefix: str = "") -> str:
    return " ".join(f"{prefix}{k}={v}" for k, v in sorted(dims.items()))


def _check_model(meta: Mapping[str, Any], profile_path: str, model_path: str, redo: str) -> None:
    recorded = meta.get("model")
    if not recorded:
        return
    rec_name, name = os.path.basename(str(recorded)), os.path.basename(model_path)
    if meta.get("model_sha256"):
        sha = _sha256(model_path)
        if sha == meta["model_sha256"]:
            return
        what = (f"recorded {rec_name} (sha256 {meta['model_sha256'][:12]}), given {name} (sha256 {sha[:12]}): "
                "compared by sha256")
    elif meta.get("model_bytes") is not None:
        size = os.path.getsize(model_path)
        if rec_name == name and size == int(meta["model_bytes"]):
            return
        what = (f"recorded {rec_name} ({int(meta['model_bytes']):,} bytes), given {name} ({size:,} bytes): "
                "compared by file name and size")
    else:
        if rec_name == name:
            return
        what = f"recorded {rec_name}, given {name}: compared by file name (the profile records no size or hash)"
    raise UsageError(f"{profile_path}: a profile of another model ({what}); pass the model that was profiled, "
                     f"or profile this one: {redo}")


def onnx_profile_dims(meta: Mapping[str, Any], profile_path: str, model_path: str,
                      dims: Optional[Mapping[str, int]]) -> dict[str, int]:
    """The dims to project `model_path` at against an onnxruntime profile with graphperf metadata `meta`:
    the recorded dims, the user's `dims` where given; `UsageError` for another model or a differing dim."""
    dims = dict(dims or {})
    recorded = {str(k): int(v) for k, v in (meta.get("dims") or {}).items()}
    redo = f"`graphperf profile {model_path}{' ' + _dims_text(dims, '--dim ') if dims else ''} -o PROFILE.json`"
    _check_model(meta, profile_path, model_path, redo)
    differ = {k: v for k, v in dims.items() if k in recorded and recorded[k] != v}
    if differ:
        got = _dims_text({k: recorded[k] for k in differ})
        raise UsageError(f"{profile_path}: recorded at {got}, projected at {_dims_text(differ, '--dim ')}: the "
                         f"shapes differ; drop --dim to project at the profile's dims, or profile at these: {redo}")
    return {**recorded, **dims}


# -- torch.profiler traces -----------------------------------------------------------------------------


def _shape_text(shapes) -> str:
    return "(" + ", ".join("x".join(map(str, s)) for s in shapes) + ")"


def _graph_side(graph) -> tuple[dict[str, list], dict[str, tuple[list, list]]]:
    """Per ATen op name, the captured nodes in order; per node, its tensor inputs' shapes and dtypes."""
    by_name: dict[str, list] = {}
    inputs: dict[str, tuple[list, list]] = {}
    for n in graph.nodes:
        by_name.setdefault(aten_name(n.source_op), []).append(n)
        types = [graph.values[v].type for v in n.inputs
                 if v is not None and v in graph.values and getattr(graph.values[v].type, "shape", None)]
        inputs[n.name] = ([tuple(t.shape) for t in types], [t.dtype for t in types])
    return by_name, inputs


def _pairs(ops, by_name):
    """(trace op, graph node or None): the k-th traced op of a name against the k-th node of that name."""
    seen: Counter = Counter()
    for op in ops:
        nodes = by_name.get(op.name, [])
        k = seen[op.name]
        seen[op.name] += 1
        yield op, (nodes[k] if k < len(nodes) else nodes[0] if nodes else None)


def _dominant_float(dtype_lists) -> Optional[str]:
    c = Counter(d for ds in dtype_lists for d in ds if is_float(d))
    return c.most_common(1)[0][0] if c else None


def _workload_shape(info: Mapping[str, Any]) -> dict[str, int]:
    """A models/ workload's resolved --batch/--seq/--kv-len, from its description (`models.build`)."""
    if not str(info.get("source", "")).startswith("graphperf.models:"):
        return {}
    text = str(info.get("description", ""))
    return {flag: int(m.group(1)) for flag, key in (("--batch", "batch"), ("--seq", "seq"), ("--kv-len", "kv_len"))
            if (m := re.search(rf"\b{key}=(\d+)", text))}


def _shape_flags(mismatched, inputs, shape: Mapping[str, int]) -> list[str]:
    """The workload flags (`shape`: flag -> projected value) whose traced value, read off the shapes of
    the `mismatched` (op, node) pairs, differs from the projected one. A pair is read only when every
    axis where it differs holds a projected value in the graph (or one less: a decode step's past
    length); a flag is suggested only when at least half of the pairs are read so, and takes the traced
    value its projected value became most often. Another model (other widths, other ranks) gives none."""
    sizes = {v for v in shape.values()} | {v - 1 for v in shape.values()}
    moves: Counter = Counter()
    read = 0
    for op, node in mismatched:
        t_shapes, g_shapes = op.tensor_shapes, inputs[node.name][0]
        diffs = [(gv, tv) for t, g in zip(t_shapes, g_shapes) for gv, tv in zip(g, t) if gv != tv]
        if (len(t_shapes) != len(g_shapes) or any(len(t) != len(g) for t, g in zip(t_shapes, g_shapes))
                or not diffs or any(gv not in sizes for gv, _ in diffs)):
            continue
        read += 1
        moves.update(diffs)
    if not read or read < MIN_MATCHED * len(mismatched):
        return []
    flags = []
    for flag, value in shape.items():
        to = [(n, tv) for (gv, tv), n in moves.items() if gv == value]
        if to:
            flags.append(f"{flag} {max(to)[1]}")
    return flags


def check_kineto_trace(trace, graph, matched: Mapping[int, str], ref: str, info: Mapping[str, Any]) -> None:
    """Refuse (`UsageError`, one line) a torch.profiler `trace` that does not belong to `graph`: traced
    float dtypes other than the graph's, fewer than `MIN_MATCHED` of the timed top-level ops (or of
    their time) matched (`matched`: op index -> node, from `match.match_kineto_ops`), or unmatched ops
    of a models/ workload that read as other --batch/--seq/--kv-len values (`info`: `load_graph`'s)."""
    by_name, inputs = _graph_side(graph)
    workload = str(info.get("source", "")).startswith("graphperf.models:")
    problems: list[str] = []
    flags: list[str] = []
    traced_dt = _dominant_float(op.tensor_dtypes for op in trace.ops)
    graph_dt = _dominant_float(dt for _, dt in inputs.values())
    if traced_dt and graph_dt and traced_dt != graph_dt:
        first = [(op, node) for op, node in _pairs(trace.ops, by_name) if node is not None
                 and traced_dt in op.tensor_dtypes and traced_dt not in inputs[node.name][1]][:_SHOWN]
        shown = "; ".join(f"{op.name}#{op.index} traced {'/'.join(dict.fromkeys(op.tensor_dtypes))}, graph "
                          f"{'/'.join(dict.fromkeys(inputs[node.name][1]))}" for op, node in first)
        problems.append(f"the trace runs {traced_dt}, the projection {graph_dt}" + (f" ({shown})" if shown else ""))
        flags.append(f"--dtype {traced_dt}")
    timed = [op for op in trace.ops if op.durations_us and op.median_us > 0]
    timed_at = {op.index for op in timed}
    missed = [(op, node) for op, node in _pairs(trace.ops, by_name) if op.index in timed_at and op.index not in matched]
    total_us = sum(op.median_us for op in timed)
    hit_us = total_us - sum(op.median_us for op, _ in missed)
    shape_flags = _shape_flags([(op, n) for op, n in missed if n is not None], inputs, _workload_shape(info))
    if missed and (len(missed) > (1 - MIN_MATCHED) * len(timed) or hit_us < MIN_MATCHED * total_us or shape_flags):
        shown = "; ".join(f"{op.name}#{op.index} traced {_shape_text(op.tensor_shapes)}, graph "
                          + (_shape_text(inputs[node.name][0]) if node is not None else "has no such op")
                          for op, node in missed[:_SHOWN])
        problems.append(f"{len(missed)} of {len(timed)} timed ops ({1 - hit_us / total_us:.0%} of the time) match "
                        f"no graph node ({shown})")
        flags += shape_flags
    if not problems:
        return
    if flags and workload:
        todo = f"project it with {' '.join(flags)}"
    elif flags:  # a .pt2 file: its shapes and dtype are the exported ones
        todo = f"export {ref} in {flags[0].split()[-1]}, or trace it in the exported dtype"
    elif workload:
        todo = ("a trace of another model, or of sizes not read off as --batch/--seq/--kv-len: correlate it with "
                "the workload and flags it traced")
    else:
        todo = f"a trace of another model or other shapes: trace {ref} at the shapes it was exported with"
    raise UsageError(f"{trace.path}: not a trace of {ref} as projected: {'; '.join(problems)}; {todo}")
