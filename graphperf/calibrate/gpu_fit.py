"""`graphperf calibrate --fit` on GPU measurements: kernel sweep files and torch.profiler GPU traces.

A spec is one of:

- ``SWEEPS.json``: a sweep file (`graphperf.calibrate.sweeps`); its rows are split once by
  `kernel_fit.split` into rows fitted and rows held out (about one in three);
- ``WORKLOAD[:key=value,...]=TRACE.json[.gz]``: a torch.profiler trace of a models/ workload (keys:
  config, phase, batch, seq, kv_len, dtype, attention), e.g. ``llama3-8b:phase=decode,batch=16,kv_len=4096,
  dtype=bfloat16=trace.json.gz``;
- ``TRACE.json[.gz]`` named as graphperf's measurement script names them
  (``llama3-8b_decode_b16_kv4096_bfloat16_sdpa.json.gz``: model, phase, b<batch>, s<seq> | kv<kv_len> |
  img, dtype, attention), the workload read from the name.

`run_gpu_fit` fits the kernel model (`kernel_fit.fit_kernel_model`) on the --fit rows and reports the
error per group on the fitted rows and on the held-out ones (held-out sweep rows and --holdout traces),
before (the base target) and after; `fitted_target_dict` writes the fitted figures with sources naming
the data, the command and the held-out error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..errors import UsageError

__all__ = ["GpuSpec", "is_gpu_spec", "parse_gpu_spec", "request_from_trace_name", "run_gpu_fit", "fitted_target_dict",
           "DEFAULT_KERNEL_FLOOR_US"]

_TRACE_NAME = re.compile(r"^(?P<model>[^_]+)_(?P<phase>[a-z]+)_b(?P<batch>\d+)_(?:s(?P<seq>\d+)|kv(?P<kv_len>\d+)|img)"
                         r"_(?P<dtype>[a-z0-9]+)_(?P<attention>sdpa|eager)$")
#: kernel_floor_us given to a base target without the kernel model (replaced by the fit where rows inform it).
DEFAULT_KERNEL_FLOOR_US = 1.0
_KEYS = {"config": str, "phase": str, "batch": int, "seq": int, "kv_len": int, "dtype": str, "attention": str}


@dataclass(frozen=True)
class GpuSpec:
    path: str
    kind: str  # sweeps | trace
    request: Any = None  # pipeline.ModelRequest for a trace


def _sweep_file(path: str) -> bool:
    from .sweeps import SCHEMA

    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return SCHEMA.encode() in head


def is_gpu_spec(spec: str) -> bool:
    """True for a sweep file or a torch.profiler trace (a spec the ORT fit does not take)."""
    from ..correlate.reader import profile_format

    path = spec.rpartition("=")[2]
    if not os.path.isfile(path):
        return False
    if _sweep_file(path):
        return True
    try:
        return profile_format(path) == "kineto"
    except UsageError:
        return False


def request_from_trace_name(name: str):
    """The workload a trace named as graphperf's measurement script names them profiled
    (``llama3-8b_decode_b16_kv4096_bfloat16_sdpa``, with or without ``.json[.gz]``), as a `pipeline.ModelRequest`;
    None when the name does not follow that pattern."""
    from ..pipeline import ModelRequest

    base = os.path.basename(name)
    stem = base[: -len(".json.gz")] if base.endswith(".json.gz") else os.path.splitext(base)[0]
    m = _TRACE_NAME.match(stem)
    if not m:
        return None
    return ModelRequest(m["model"], **{k: _KEYS[k](v) for k, v in m.groupdict().items() if k != "model" and v is not None})


def parse_gpu_spec(spec: str, flag: str = "--fit") -> GpuSpec:
    from ..pipeline import ModelRequest

    head, sep, path = spec.rpartition("=")
    if not sep:
        head, path = "", spec
    if not os.path.isfile(path):
        raise UsageError(f"{flag} {spec}: file {path} not found")
    if _sweep_file(path):
        if head:
            raise UsageError(f"{flag} {spec}: a sweep file takes no workload; pass {path} alone")
        return GpuSpec(path, "sweeps")
    if not head:
        request = request_from_trace_name(path)
        if request is None:
            raise UsageError(f"{flag} {spec}: cannot tell which workload the trace profiled from its name; pass "
                             f"WORKLOAD[:phase=..,batch=..]={path}")
        return GpuSpec(path, "trace", request)
    model, _, opts = head.partition(":")
    kw: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in _KEYS:
            raise UsageError(f"{flag} {spec}: bad workload option {item!r}; use KEY=VALUE with KEY one of "
                             + ", ".join(_KEYS))
        try:
            kw[key] = _KEYS[key](value)
        except ValueError:
            raise UsageError(f"{flag} {spec}: {key}={value!r} is not a number") from None
    return GpuSpec(path, "trace", ModelRequest(model, **kw))


def _rows(specs: Sequence[GpuSpec], base):
    from .kernel_fit import split, sweep_kernel_rows, trace_kernel_rows

    fit_rows, held_rows, skipped = [], [], []
    for s in specs:
        if s.kind == "sweeps":
            rows, skip = sweep_kernel_rows(s.path)
            a, b = split(rows)
            fit_rows += a
            held_rows += b
            skipped += skip
        else:
            fit_rows += trace_kernel_rows(s.request, s.path, base)
    return fit_rows, held_rows, skipped


def run_gpu_fit(fit_specs: Sequence[str], holdout_specs: Sequence[str], base) -> dict[str, Any]:
    """Fit `base` to the --fit data; returns the outcome and the error report (see the module docstring)."""
    from .kernel_fit import SweepTimer, errors_by_group, fit_kernel_model

    fits = [parse_gpu_spec(s, "--fit") for s in fit_specs]
    holds = [parse_gpu_spec(s, "--holdout") for s in holdout_specs]
    if any(h.kind == "sweeps" for h in holds):
        raise UsageError("--holdout: a sweep file is split into fitted and held-out rows by --fit itself; give it "
                         "to --fit")
    defaulted = {}
    if base.kernel_floor_us is None:  # switch the kernel model on; the fit replaces this unless no row informs it
        defaulted["kernel_floor_us"] = DEFAULT_KERNEL_FLOOR_US
        base = base.with_overrides(**defaulted)
    fit_rows, held_rows, skipped = _rows(fits, base)
    for h in holds:
        held_rows += _rows([h], base)[0]
    if not fit_rows:
        raise UsageError("--fit: no measured kernel in the given files")
    outcome = fit_kernel_model(fit_rows, base)
    report = {}
    for label, rows in (("fitted", fit_rows), ("held_out", held_rows)):
        report[label] = {"before": errors_by_group(rows, base, SweepTimer()),
                         "after": errors_by_group(rows, outcome.target, outcome.timer)} if rows else {}
    return {"outcome": outcome, "report": report, "skipped": skipped, "fit_rows": len(fit_rows), "defaulted": defaulted,
            "rows": {"fitted": fit_rows, "held_out": held_rows},
            "held_rows": len(held_rows), "files": [s.path for s in fits], "holdout_files": [s.path for s in holds]}


def fitted_target_dict(base, result: dict[str, Any], date: str, command: str, name: Optional[str] = None) -> dict:
    """The fitted target as a dict for `target_file.to_toml`: the base target with the fitted figures, each
    sourced to the data, the command and the held-out error."""
    from graphperf.target import _SCALARS

    outcome = result["outcome"]
    d = outcome.target.to_dict()
    data = {k: d[k] for k in _SCALARS if d.get(k) is not None}
    data["calibrated"] = True
    data["name"] = name or f"{base.name}-fitted"
    files = ", ".join(os.path.basename(p) for p in result["files"])
    held = result["report"].get("held_out", {}).get("after", {})
    held_text = "; ".join(f"{g} {v['median_ape']:.1%} ({v['rows']} rows)" for g, v in held.items()) or "none held out"
    stamp = (f"fitted by `{command}` on {date} to {result['fit_rows']} measured kernels of {files}; held-out median "
             f"|error|: {held_text}")
    sources = dict(base.sources)
    for field, value in outcome.fitted.items():
        sources[field] = f"fit: {stamp}"
    for field, value in result.get("defaulted", {}).items():
        if field not in outcome.fitted:
            sources[field] = (f"default: {value:g}, set by graphperf calibrate --fit to switch the size-aware kernel "
                              "model on; no streaming kernel in the fitted data informed it")
    data["sources"] = sources
    data["references"] = {**dict(base.references), "gpu_fit": f"`{command}` run {date}; data: {files}"}
    data["derived"] = {k: v for k, v in base.derived.items() if k in data and k not in outcome.fitted}
    t = outcome.timer
    data["notes"] = "\n".join(filter(None, [base.notes.rstrip(), f"Kernel model {stamp}.",
                                            f"Sweep timer (do_bench) fitted with it, not part of the target: "
                                            f"offset {t.offset_us:.3g} us, L2 dirty write-back share "
                                            f"{t.dirty_share:.3g}."]))
    return data
