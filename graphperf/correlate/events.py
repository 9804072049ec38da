"""Chrome-trace events, the bottom of the correlate package: reading a trace file and telling its format.

Guarantees: this module imports nothing from graphperf.correlate, so the readers of both formats
(`reader` for onnxruntime profiles, `kineto` for torch.profiler traces), the profiler (`ort_profile`)
and the matchers (`provenance`, `match`) share these pieces without importing each other in a circle.
- `load_events` returns the trace events of a Chrome-trace JSON file (a list, or ``{"traceEvents": [...]}``),
  gzip-compressed or not (recognised by its magic bytes, whatever its name); a missing, unreadable,
  truncated or malformed file is a one-line `UsageError` naming the file and what was expected.
- `is_kineto` tells a torch.profiler (Kineto) trace by its ``cpu_op`` or kernel events (`KERNEL_CATS`).
- `META_NAME` names graphperf's metadata event in the profiles `graphperf profile` writes.
- `aten_name` spells a captured node's ATen op the way torch.profiler records it.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib

from ..errors import UsageError

__all__ = ["load_events", "is_kineto", "KERNEL_CATS", "META_NAME", "aten_name"]

META_NAME = "graphperf_profile"  # the metadata event graphperf adds to the profiles it writes
KERNEL_CATS = ("kernel", "gpu_memcpy", "gpu_memset")  # torch.profiler's device-side event categories

_GZIP_MAGIC = b"\x1f\x8b"  # gzip's first two bytes (RFC 1952)


def load_events(path: str, what: str = "onnxruntime profile",
                hint: str = "write one with `graphperf profile MODEL.onnx` (it writes MODEL.profile.json)") -> list[dict]:
    """The trace events of a Chrome-trace JSON file (a list, or {"traceEvents": [...]}); one-line
    `UsageError`s naming `what` was expected for a missing, unreadable or malformed file."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such {what.split()[-1]}; {hint.format(path=path)}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise UsageError(f"{path}: not a readable {what} ({e.strerror or e}); {hint.format(path=path)}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UsageError(f"{path}: a gzip file that does not decompress ({e}): truncated or corrupt; "
                             f"copy or export the {what} again") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a readable {what} (JSON error: {e}); {hint.format(path=path)}") from None
    if isinstance(data, dict) and isinstance(data.get("traceEvents"), list):
        data = data["traceEvents"]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise UsageError(f"{path}: not a {what} (expected a JSON list of trace events or a traceEvents list)")
    return data


def is_kineto(events: list[dict]) -> bool:
    """True when the events are a torch.profiler trace (cpu_op or kernel events)."""
    return any(e.get("cat") in ("cpu_op", *KERNEL_CATS) for e in events)


def aten_name(source_op: str) -> str:
    """``aten.linear.default`` -> ``aten::linear`` (the name torch.profiler records)."""
    parts = source_op.split(".")
    return f"{parts[0]}::{parts[1]}" if len(parts) >= 2 and parts[0] in ("aten", "prims") else source_op
