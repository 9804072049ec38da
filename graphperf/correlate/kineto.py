"""Read a torch.profiler (Kineto) Chrome trace: the top-level ATen ops of each step with their input
shapes and times, and the CUDA kernels each one launched when the trace has them.

Guarantees:
- Ops are the ``cat == "cpu_op"`` complete events (``ph == "X"``); an op is *top-level* when no other
  cpu_op on its thread contains it (``aten::linear`` is top-level, the ``aten::addmm`` it calls is not).
  Input shapes come from ``args["Input Dims"]`` (export the trace with ``record_shapes=True``); ops
  without them still match by name and order. Input dtypes come from ``args["Input type"]`` where
  recorded (`KinetoOp.tensor_dtypes`, canonical names through `TORCH_TYPE_NAMES`).
- Kernels are the ``cat`` ``kernel`` / ``gpu_memcpy`` / ``gpu_memset`` events. Each is attributed to
  the op that launched it: the cpu_op with the kernel's ``External id``; else, through its
  ``correlation`` id, the ``cuda_runtime``/``cuda_driver`` launch event, and the cpu_op containing that
  launch. A kernel attributed to no op is kept in `KinetoTrace.orphan_kernels`, never dropped.
- Steps: the ``ProfilerStep#N`` annotations (`prof.step()` in the profiled loop) split the trace; without
  them the whole trace is one step (repeated layers and repeated calls look alike, so steps are never
  guessed). No step is skipped as a warm-up by default: a torch.profiler schedule's ``warmup`` already
  keeps warm-up steps out of the trace (override with `warmup_runs`).
- Each top-level op is keyed by its position in the step; its measured time is the median over the
  measured steps of its own duration (CPU trace) or of its kernels' summed durations (GPU trace,
  ``device = "cuda"``). Times are microseconds, as in the trace.
- Per measured step: `step_wall_us`, the duration of its ``ProfilerStep#N`` span as recorded (empty when
  the trace has no such spans; torch.profiler's own bookkeeping inflates host time, so this is the
  wall as measured under the profiler), and `step_kernel_us`, the summed durations of the kernels its
  top-level ops launched (GPU traces; empty on a CPU trace). `step_wall_s` / `step_kernel_s` are their
  medians in seconds (None when empty).
- A missing, unreadable or non-Kineto file raises `UsageError` naming the file.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import UsageError
from .events import KERNEL_CATS, is_kineto, load_events

__all__ = ["KinetoOp", "KinetoTrace", "read_kineto", "is_kineto"]

# torch.profiler's ``Input type`` spellings (c10 scalar type names as C++ prints them) -> canonical dtypes
TORCH_TYPE_NAMES = {"float": "float32", "double": "float64", "c10::Half": "float16", "c10::BFloat16": "bfloat16",
                    "c10::Float8_e4m3fn": "float8_e4m3fn", "c10::Float8_e5m2": "float8_e5m2", "long int": "int64",
                    "int": "int32", "short int": "int16", "signed char": "int8", "unsigned char": "uint8",
                    "bool": "bool", "c10::complex<float>": "complex64", "c10::complex<double>": "complex128"}

_LAUNCH_CATS = ("cuda_runtime", "cuda_driver", "hip_runtime")


@dataclass
class KinetoOp:
    name: str  # e.g. "aten::linear"
    input_dims: list  # per input: a shape list ([] for scalars / non-tensors)
    index: int  # position among the step's top-level ops
    durations_us: list[float]  # per measured step: CPU time, or kernel time on a GPU trace
    kernels: list[str] = field(default_factory=list)  # kernel names (first measured step)
    input_types: list = field(default_factory=list)  # per input, as recorded: "float", "c10::BFloat16", "Scalar", ...

    @property
    def median_us(self) -> float:
        return float(statistics.median(self.durations_us))

    @property
    def tensor_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the inputs that look like tensors (non-empty dims lists), a tensor list (``aten::cat``'s
        first argument, recorded as a list of shapes) flattened into its tensors."""
        out: list[tuple[int, ...]] = []
        for d in self.input_dims:
            if isinstance(d, list) and d and all(isinstance(x, list) for x in d):
                out += [tuple(x) for x in d if x]
            elif isinstance(d, list) and d and all(isinstance(x, int) for x in d):
                out.append(tuple(d))
        return out

    @property
    def tensor_dtypes(self) -> list[str]:
        """Canonical dtypes (graphperf.dtypes) of the inputs that are tensors (a non-empty dims list and a
        recorded ``Input type`` torch names a dtype by), in input order; empty where the trace has no types."""
        out: list[str] = []
        for d, t in zip(self.input_dims, self.input_types):
            if isinstance(d, list) and d and all(isinstance(x, int) for x in d) and t in TORCH_TYPE_NAMES:
                out.append(TORCH_TYPE_NAMES[t])
        return out


@dataclass
class KinetoTrace:
    path: str
    ops: list[KinetoOp]  # top-level ops of one step, in order
    runs: int
    warmup_runs: int
    device: str  # "cpu" or "cuda": what durations_us measure
    orphan_kernels: list[dict[str, Any]]  # kernels attributed to no op: name, dur_us
    steps_from: str  # "ProfilerStep" | "repetition" | "single"
    step_wall_us: list[float] = field(default_factory=list)  # per measured step: its ProfilerStep span
    step_kernel_us: list[float] = field(default_factory=list)  # per measured step: its ops' kernel time

    @property
    def measured_runs(self) -> int:
        return self.runs - self.warmup_runs

    @property
    def step_wall_s(self) -> Optional[float]:
        """Median ProfilerStep span over the measured steps, seconds (None without ProfilerStep spans)."""
        return float(statistics.median(self.step_wall_us)) * 1e-6 if self.step_wall_us else None

    @property
    def step_kernel_s(self) -> Optional[float]:
        """Median kernel time per measured step, seconds (None on a CPU trace)."""
        return float(statistics.median(self.step_kernel_us)) * 1e-6 if self.step_kernel_us else None


def _load(path: str) -> list[dict]:
    return load_events(path, "torch.profiler trace", "export one with torch.profiler's export_chrome_trace")


def _top_level(ops: list[dict]) -> tuple[list[dict], dict[int, dict]]:
    """Top-level ops in time order, and for every op (by id) its top-level ancestor."""
    top: list[dict] = []
    root_of: dict[int, dict] = {}
    by_tid: dict[Any, list[dict]] = {}
    for e in ops:
        by_tid.setdefault((e.get("pid"), e.get("tid")), []).append(e)
    for events in by_tid.values():
        events.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack: list[dict] = []
        for e in events:
            ts = float(e["ts"])
            while stack and ts >= float(stack[-1]["ts"]) + float(stack[-1]["dur"]):
                stack.pop()
            if stack:
                root_of[id(e)] = root_of[id(stack[0])]
            else:
                root_of[id(e)] = e
                top.append(e)
            stack.append(e)
    top.sort(key=lambda e: float(e["ts"]))
    return top, root_of


def _containing(ops_sorted: list[dict], tid_key, ts: float) -> Optional[dict]:
    best = None
    for e in ops_sorted:
        if (e.get("pid"), e.get("tid")) == tid_key and float(e["ts"]) <= ts <= float(e["ts"]) + float(e["dur"]):
            if best is None or float(e["dur"]) < float(best["dur"]):
                best = e
    return best


def _steps(top: list[dict], annotations: list[dict]) -> tuple[list[list[dict]], str, list[float]]:
    """The steps' top-level ops, where the steps come from, and each step's span duration (ProfilerStep)."""
    if annotations:
        spans = sorted((float(a["ts"]), float(a["ts"]) + float(a["dur"])) for a in annotations)
        steps = [([e for e in top if s <= float(e["ts"]) <= t], t - s) for s, t in spans]
        steps = [(ops, dur) for ops, dur in steps if ops]
        if steps:
            return [ops for ops, _ in steps], "ProfilerStep", [dur for _, dur in steps]
    return [top], "single", []


def read_kineto(path: str, warmup_runs: Optional[int] = None) -> KinetoTrace:
    """Parse the torch.profiler Chrome trace at `path`; a malformed event is a one-line `UsageError`."""
    events = _load(path)
    try:
        return _read(path, events, warmup_runs)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise UsageError(f"{path}: malformed torch.profiler event ({type(e).__name__}: {e})") from None


def _read(path: str, events: list, warmup_runs: Optional[int]) -> KinetoTrace:
    ops = [e for e in events if e.get("cat") == "cpu_op" and e.get("ph") == "X"]
    kernels = [e for e in events if e.get("cat") in KERNEL_CATS and e.get("ph") == "X"]
    launches = [e for e in events if e.get("cat") in _LAUNCH_CATS and e.get("ph") == "X"]
    annotations = [e for e in events if str(e.get("name", "")).startswith("ProfilerStep#")
                   and e.get("ph") == "X" and e.get("cat") != "gpu_user_annotation"]
    for e in ops + kernels + launches + annotations:  # a malformed event fails here: read_kineto's one line
        float(e["ts"]), float(e["dur"])
    if not ops:
        raise UsageError(f"{path}: no cpu_op events: record the trace with torch.profiler "
                         "(activities=[ProfilerActivity.CPU, ...], record_shapes=True) and export_chrome_trace")
    top, root_of = _top_level(ops)
    # kernels -> launching top-level op
    by_ext = {(e.get("args") or {}).get("External id"): e for e in ops}
    by_corr = {(e.get("args") or {}).get("correlation"): e for e in launches}
    ops_sorted = sorted(ops, key=lambda e: float(e["ts"]))
    device_time: dict[int, float] = {}
    device_names: dict[int, list[str]] = {}
    orphans: list[dict[str, Any]] = []
    for k in kernels:
        args = k.get("args") or {}
        op = by_ext.get(args.get("External id")) if args.get("External id") is not None else None
        if op is None and args.get("correlation") in by_corr:
            launch = by_corr[args["correlation"]]
            op = by_ext.get((launch.get("args") or {}).get("External id")) or \
                _containing(ops_sorted, (launch.get("pid"), launch.get("tid")), float(launch["ts"]))
        if op is None:
            orphans.append({"name": k.get("name", ""), "dur_us": float(k["dur"])})
            continue
        root = root_of[id(op)]
        device_time[id(root)] = device_time.get(id(root), 0.0) + float(k["dur"])
        device_names.setdefault(id(root), []).append(str(k.get("name", "")))
    device = "cuda" if kernels else "cpu"
    steps, steps_from, step_durs = _steps(top, annotations)
    runs = len(steps)
    if warmup_runs is None:
        warmup_runs = 0
    if not 0 <= warmup_runs < runs:
        raise UsageError(f"{path}: {runs} step(s) in the trace, cannot skip {warmup_runs} warm-up step(s)")
    measured = steps[warmup_runs:]
    first = measured[0]
    out: list[KinetoOp] = []
    for i, e in enumerate(first):
        durs = []
        for step in measured:
            if i < len(step) and step[i]["name"] == e["name"]:
                s = step[i]
                durs.append(device_time.get(id(s), 0.0) if device == "cuda" else float(s["dur"]))
        args = e.get("args") or {}
        dims = args.get("Input Dims") or []
        types = args.get("Input type") or []
        out.append(KinetoOp(e["name"], dims if isinstance(dims, list) else [], i, durs,
                            device_names.get(id(e), []), types if isinstance(types, list) else []))
    walls = step_durs[warmup_runs:]
    kernel_totals = [sum(device_time.get(id(e), 0.0) for e in step) for step in measured] if device == "cuda" else []
    return KinetoTrace(path, out, runs, warmup_runs, device, orphans, steps_from, walls, kernel_totals)
