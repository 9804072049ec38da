"""Run an ONNX model under onnxruntime with profiling and write the profile JSON.

Guarantees:
- One CPUExecutionProvider session, `threads` intra-op threads (1 by default, so node times are
  single-core and comparable run to run), `warmup` unmeasured runs then `runs` measured runs, all
  in one profile. Inputs are random normal floats (seeded) or zeros for integer and bool inputs
  (zeros index safely into any gather or embedding), after the dynamic dims are bound by `dims`.
- Graph optimizations: ``"basic"`` (default: constant folding, redundant-node elimination and
  simple fusions such as MatMul+Add -> Gemm, what a user runs) or ``"disable"`` (every ONNX node
  runs as written). Under ``"basic"`` the optimized model is saved beside the profile
  (``PROFILE.optimized.onnx``) so fused nodes map back to the nodes they replaced.
- The profile is onnxruntime's own Chrome-trace JSON plus one metadata event (cat ``graphperf``)
  recording the model (path, size, sha256), the dims bound, the warm-up and measured run counts,
  threads, optimization level and the optimized model's path; `graphperf.correlate.reader` reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Mapping, Optional

from ..errors import UsageError
from .events import META_NAME
from .provenance import model_fingerprint

__all__ = ["profile_onnx", "OPTIMIZATIONS", "META_NAME"]

OPTIMIZATIONS = ("basic", "disable")

_NP_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
             "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
             "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def profiling_options(prefix: str, threads: int, basic: bool):
    """onnxruntime session options that profile every node: `threads` intra-op threads, one inter-op
    thread, sequential execution, `basic` graph optimizations or none; the profile file starts with `prefix`."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = prefix
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if basic
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return so


def default_output(model_path: str) -> str:
    stem = os.path.splitext(os.path.basename(model_path))[0]
    return f"{stem}.profile.json"


def optimized_path(profile_path: str) -> str:
    base = profile_path[:-5] if profile_path.endswith(".json") else profile_path
    return base + ".optimized.onnx"


def _inputs(session, dims: Mapping[str, int], seed: int, where: str) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds, missing = {}, []
    for arg in session.get_inputs():
        np_type = _NP_TYPES.get(arg.type)
        if np_type is None:
            raise UsageError(f"{where}: input '{arg.name}' has type {arg.type}, which `graphperf profile` cannot "
                             f"generate (it makes {', '.join(sorted(set(_NP_TYPES.values())))}); profile it with "
                             "your own script and onnxruntime's enable_profiling")
        shape = []
        for axis, d in enumerate(arg.shape):
            if isinstance(d, int) and d >= 0:
                shape.append(d)
            elif isinstance(d, str) and d in dims:
                shape.append(int(dims[d]))
            else:
                missing.append(f"'{d}' (input '{arg.name}' dim {axis})" if isinstance(d, str) and d
                               else f"unnamed dim {axis} of input '{arg.name}'")
                shape.append(1)
        if np_type.startswith("float"):
            feeds[arg.name] = rng.standard_normal(shape).astype(np_type)
        else:
            feeds[arg.name] = np.zeros(shape, dtype=np_type)
    if missing:
        raise UsageError(f"{where}: dynamic dimensions need sizes: {', '.join(missing)}; pass --dim NAME=N "
                         "for each named one")
    return feeds


def profile_onnx(model_path: str, output: Optional[str] = None, dims: Optional[Mapping[str, int]] = None,
                 runs: int = 10, warmup: int = 2, threads: int = 1, optimization: str = "basic",
                 seed: int = 0) -> str:
    """Profile `model_path` with onnxruntime; returns the path of the profile JSON written.

    Examples
    --------
    >>> profile_onnx("mlp.onnx", "mlp.profile.json", dims={"batch": 8}, runs=5)  # doctest: +SKIP
    'mlp.profile.json'
    """
    import onnxruntime as ort

    if optimization not in OPTIMIZATIONS:
        raise UsageError(f"optimization {optimization!r}: choose one of {', '.join(OPTIMIZATIONS)}")
    if runs < 1 or warmup < 0 or threads < 1:
        raise UsageError(f"runs ({runs}) and threads ({threads}) must be >= 1, warmup ({warmup}) >= 0")
    if not os.path.isfile(model_path):
        raise UsageError(f"{model_path}: no such file; pass an .onnx model")
    output = output or default_output(model_path)
    opt_path = optimized_path(output) if optimization == "basic" else None
    with tempfile.TemporaryDirectory(prefix="graphperf-profile-") as tmp:
        so = profiling_options(os.path.join(tmp, "ort"), threads, basic=optimization == "basic")
        if opt_path:  # written at session creation: kept in tmp until the profile is complete
            so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        try:
            session = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            msg = " ".join(str(e).split())[:300]
            raise UsageError(f"{model_path}: onnxruntime cannot load the model ({msg})") from None
        feeds = _inputs(session, dict(dims or {}), seed, model_path)
        for _ in range(warmup + runs):
            session.run(None, feeds)
        raw = session.end_profiling()
        with open(raw, encoding="utf-8") as fh:
            events = json.load(fh)
        if opt_path:
            shutil.move(os.path.join(tmp, "optimized.onnx"), opt_path)
    meta = {"cat": "graphperf", "name": META_NAME, "ph": "M", "pid": 0, "tid": 0, "ts": 0,
            "args": {**model_fingerprint(model_path), "warmup_runs": warmup, "measured_runs": runs,
                     "intra_op_threads": threads, "optimization": optimization,
                     "optimized_model": os.path.basename(opt_path) if opt_path else None,
                     "dims": dict(sorted((dims or {}).items())), "onnxruntime": ort.__version__}}
    events.append(meta)
    tmp_out = output + ".tmp"
    with open(tmp_out, "w", encoding="utf-8") as fh:
        json.dump(events, fh, indent=0)
    shutil.move(tmp_out, output)
    return output
