"""Write target TOML files: the measured CPU (or CUDA GPU) target of `graphperf calibrate`, and the
generic writer `to_toml` the fit uses too.

Guarantees:
- `to_toml` writes the fields of `graphperf.target` in schema order, then [references], [sources]
  and [derived]; what it writes, `graphperf.target.load_target` reads back to the same values.
- Every figure of a measured target has a [sources] entry "measured by graphperf calibrate on
  <cpu model> <date> (<n> repeats, min/median/max ...)", the measurement it is the median of; the
  figures of the machine itself (caches, memory, clock) cite the Linux file they were read from;
  a figure that could not be measured or read is left out, never written as zero.
- The thread count the figures hold for is in the label, the notes and every source.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from . import system
from .measure import Measurement

__all__ = ["to_toml", "cpu_target", "cuda_target", "measurement_lines"]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(float(f"{v:.6g}"))
    text = str(v)
    if "\n" in text and "'''" not in text and text.replace("\n", "").isprintable():
        return "'''\n" + text + "'''"  # multi-line literal string: no escapes inside
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_toml(data: Mapping[str, Any], header: str = "") -> str:
    """A target dict (scalar fields plus the references/sources/derived tables) as TOML text."""
    from graphperf.target import _SCALARS  # the schema order

    lines = [f"# {h}" if h else "#" for h in header.splitlines()]
    lines += [f"{k} = {_value(data[k])}" for k in _SCALARS if data.get(k) is not None and data.get(k) != ""]
    for table in ("references", "sources", "derived"):
        entries = data.get(table) or {}
        if entries:
            lines += ["", f"[{table}]"] + [f"{k} = {_value(v)}" for k, v in sorted(entries.items())]
    return "\n".join(lines) + "\n"


def measurement_lines(results: Mapping[str, Any]) -> list[str]:
    """One line per measurement: name, min / median / max, spread, and NOISY past the spread limit."""
    out = []
    for value in results.values():
        for m in value if isinstance(value, list) else [value]:
            if isinstance(m, Measurement):
                out.append(f"{m.name}: {m.summary()}{'  NOISY' if m.noisy else ''}")
    return out


def _src(m: Measurement, what: str, stamp: str) -> str:
    return f"calibrate: {what}: median of {m.name}, measured by graphperf calibrate on {stamp} ({m.summary()})"


def cpu_target(results: Mapping[str, Any], threads: int, date: str, name: str = "host",
               command: str = "graphperf calibrate") -> dict[str, Any]:
    """The target dict of a CPU from `cpu_bench.run_cpu` results, measured on `threads` threads."""
    cpu = system.cpu_model()
    stamp = f"{cpu} {date}, {threads} thread(s)"
    data: dict[str, Any] = {
        "name": name, "label": f"{cpu}, {threads} thread(s) (measured by graphperf calibrate)",
        "vendor": cpu.split()[0] if cpu.split() and cpu.split()[0] in ("AMD", "Intel", "Apple", "ARM", "Ampere")
        else "unknown", "kind": "cpu", "calibrated": True, "allow_tf32": False,
    }
    sources: dict[str, str] = {}
    derived: dict[str, str] = {}

    left_out: list[str] = []

    def put(field: str, key: str, scale: float, what: str) -> None:
        m = results.get(key)
        if isinstance(m, Measurement) and m.median > 0:
            data[field] = m.median * scale
            sources[field] = _src(m, what, stamp)
        elif isinstance(m, Measurement):  # a timer too coarse for it: unknown, not zero
            left_out.append(f"{field} (median of {m.name} is {m.median:g} {m.unit})")

    put("vector_fp32_tflops", "ort_matmul_float32", 1e-3,
        "float32 matmul throughput in onnxruntime (the runtime `graphperf profile` measures), GFLOP/s / 1000")
    put("vector_fp64_tflops", "torch_matmul_float64", 1e-3, "float64 matmul throughput, GFLOP/s / 1000")
    put("matrix_bf16_tflops", "torch_matmul_bfloat16", 1e-3, "bfloat16 matmul throughput, GFLOP/s / 1000")
    put("matrix_fp16_tflops", "torch_matmul_float16", 1e-3, "float16 matmul throughput, GFLOP/s / 1000")
    put("hbm_gbps", "triad", 1.0, "STREAM-style triad, bytes read + written")
    put("launch_overhead_us", "ort_profiled_node", 1.0,
        "per-node time onnxruntime's profiler reports for a tiny node, what `graphperf profile` measures "
        "(unprofiled dispatch is lower: see notes, onnxruntime per-node dispatch)")
    if "launch_overhead_us" not in data:  # the profiler's whole-microsecond timer read 0
        put("launch_overhead_us", "ort_dispatch", 1.0, "onnxruntime per-node dispatch of a tiny node, unprofiled")
    for f in ("vector_fp32_tflops", "vector_fp64_tflops"):
        if f in data:
            derived[f] = "no vendor peak for this CPU slice: the achieved matmul rate stands in for the FMA peak"
    caches, one = system.cache_bytes(), system.cache_bytes(per_instance=True)
    info = "system_info: Linux /sys/devices/system/cpu/*/cache, /proc/cpuinfo, /proc/meminfo read " + date
    if 2 in one:
        # one thread = one unit: its on-chip memory is one core's L2, and the L2 the measured threads
        # reach is one instance per thread (private L2 per core)
        data["onchip_sram_per_unit_kb"] = one[2] / 2**10
        sources["onchip_sram_per_unit_kb"] = (f"{info}: one L2 instance {one[2] // 2**10} KiB (the per-unit "
                                              "on-chip memory of a core, as targets.json uses for CPUs)")
        data["l2_mb"] = min(caches.get(2, one[2]), one[2] * threads) / 2**20
        sources["l2_mb"] = (f"{info}: L2 {one[2] // 2**10} KiB per instance x {threads} thread(s) measured "
                            f"({caches.get(2, one[2]) // 2**10} KiB over all cores; MiB, as lscpu labels it)")
    if 3 in caches:
        data["llc_mb"] = caches[3] / 2**20
        sources["llc_mb"] = f"{info}: L3 {caches[3] // 2**10} KiB (MiB, as lscpu labels it)"
    mem = system.memory_bytes()
    if mem:
        data["memory_gb"] = mem / 1e9
        sources["memory_gb"] = f"{info}: MemTotal {mem // 1024} KiB"
    clock = system.clock_mhz()
    if clock:
        data["clock_mhz"] = clock
        sources["clock_mhz"] = f"{info}: cpu MHz {clock} (nominal; boost not visible)"
    data["compute_units"] = threads
    sources["compute_units"] = f"calibrate: the {threads} thread(s) the figures were measured on (--threads)"
    for f in ("matrix_efficiency", "vector_efficiency", "memory_efficiency"):
        data[f] = 1.0
        sources[f] = "calibrate: 1.0 because the peaks are throughputs achieved on this machine, not vendor peaks"
    noisy = [m.name for v in results.values() for m in (v if isinstance(v, list) else [v])
             if isinstance(m, Measurement) and m.noisy]
    skipped = [f"{k}: {v}" for k, v in results.items() if isinstance(v, str)]
    data["notes"] = "\n".join(
        [f"Measured by `{command}` on {system.describe()}, {date}, {threads} thread(s) (torch.set_num_threads and",
         "onnxruntime intra_op_num_threads). min / median / max of each measurement; the target uses medians:",
         *("  " + line for line in measurement_lines(results)),
         *(["NOISY (spread > 25%): " + "; ".join(noisy) + ": rerun on a quiet machine"] if noisy else []),
         *(["not measured: " + "; ".join(skipped)] if skipped else []),
         *(["left out (not > 0): " + "; ".join(left_out)] if left_out else []),
         "int8, fp8 and fp4 matmuls are not measured: int8 uses the bfloat16 figure by the fallback rule."])
    data["references"] = {"calibrate": f"`{command}` run on {stamp} ({system.describe()})",
                          "system_info": f"this machine's Linux /sys and /proc files, read {date}"}
    data["sources"] = sources
    data["derived"] = derived
    return data


def cuda_target(results: Mapping[str, Any], date: str, name: str,
                command: str = "graphperf calibrate --device cuda") -> dict[str, Any]:
    """The target dict of the CUDA GPU measured by `cuda_bench.run_cuda` (untested without a GPU)."""
    gpu = str(results.get("device_name", "CUDA GPU"))
    stamp = f"{gpu} {date}"
    data: dict[str, Any] = {"name": name, "label": f"{gpu} (measured by graphperf calibrate)",
                            "vendor": "NVIDIA" if "NVIDIA" in gpu.upper() else "unknown", "kind": "gpu",
                            "calibrated": True, "allow_tf32": False}
    sources: dict[str, str] = {}
    for field, key, scale, what in (
            ("vector_fp32_tflops", "torch_matmul_float32", 1e-3, "float32 matmul (TF32 off), GFLOP/s / 1000"),
            ("matrix_bf16_tflops", "torch_matmul_bfloat16", 1e-3, "bfloat16 matmul, GFLOP/s / 1000"),
            ("matrix_fp16_tflops", "torch_matmul_float16", 1e-3, "float16 matmul, GFLOP/s / 1000"),
            ("hbm_gbps", "copy", 1.0, "device copy, bytes read + written"),
            ("launch_overhead_us", "launch", 1.0, "tiny-kernel launch, back to back")):
        m = results.get(key)
        if isinstance(m, Measurement):
            data[field] = m.median * scale
            sources[field] = _src(m, what, stamp)
    for f in ("matrix_efficiency", "vector_efficiency", "memory_efficiency"):
        data[f] = 1.0
        sources[f] = "calibrate: 1.0 because the peaks are throughputs achieved on this GPU, not vendor peaks"
    data["notes"] = "\n".join([f"Measured by `{command}` on {gpu}, {date}:",
                               *("  " + line for line in measurement_lines(results))])
    data["references"] = {"calibrate": f"`{command}` run on {stamp}"}
    data["sources"] = sources
    return data


def write(data: Mapping[str, Any], path: str, header: Optional[str] = None) -> None:
    """Write `data` to `path` and check that `load_target` reads it back (raises if not)."""
    from graphperf.target import load_target

    text = to_toml(data, header or "")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    load_target(path if path.endswith(".toml") or "/" in path else "./" + path)
