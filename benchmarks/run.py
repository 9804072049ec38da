"""Speed and scale benchmarks of the graphperf pipeline, with onnx-tool's profiler side by side.

What it measures (each case in its own subprocess, so peak memory figures are per case):

- torch.export workloads (llama3-8b/70b/405b x prefill batch 1 seq 2048 / decode batch 1 kv_len 2048,
  built on the meta device): capture time (`load_graph`: build + torch.export + capture), analysis
  time (`analyze_graph`: count + project + liveness + report), render time (`to_json`), analysis
  nodes/s, the process's peak RSS (ru_maxrss: capture included) and the Python heap peak during
  analysis alone (tracemalloc around a second, untimed `analyze_graph` call; tracemalloc slows what
  it traces, so the timed call runs without it).
- ONNX files (synthetic 100k- and 10k-node graphs from benchmarks/synthetic_onnx.py, and gpt2 124M
  from graphperf.models exported with torch.onnx.export(dynamo=True) at opset 23 and 18), through
  graphperf (capture = onnx load + shape inference + Graph; then analysis, render) and through
  onnx-tool (load + shape_infer + profile), the same file in the same run. A tool that fails or runs
  past --timeout is recorded as such.

Usage:
    python benchmarks/run.py                      # full run, markdown to stdout
    python benchmarks/run.py --out benchmarks/RESULTS.md
    python benchmarks/run.py --quick              # llama3-8b + a 10k-node synthetic graph
    python benchmarks/run.py --profile llama3-405b:decode   # cProfile of analyze_graph, top functions
`make bench` builds .venv-bench (graphperf + onnx-tool) and runs this file there.
Nothing here asserts a speed: the goals below are reported as met / not met with the numbers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

LLAMA_MODELS = ("llama3-8b", "llama3-70b", "llama3-405b")
PHASES = {"prefill": {"phase": "prefill", "batch": 1, "seq": 2048},
          "decode": {"phase": "decode", "batch": 1, "kv_len": 2048}}

# Goals (the project's brief); reported, never asserted.
GOAL_405B_ANALYSIS_S = 5.0
GOAL_405B_ANALYSIS_BYTES = 2 * 1024**3
GOAL_NODES_PER_S = 50_000


# --- workers (run in a subprocess each) ------------------------------------------------------------

def _rss_peak_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


ANALYSIS_REPEATS = 3


def _analyze_timed(graph, target, info) -> dict[str, Any]:
    """Time analyze_graph (ANALYSIS_REPEATS calls: the first is the cold one) and to_json; then the
    heap peak of one more analyze_graph under tracemalloc."""
    import gc
    import statistics
    import tracemalloc

    from graphperf.pipeline import analyze_graph
    from graphperf.report.json_report import to_json

    times = []
    for _ in range(ANALYSIS_REPEATS):
        report = None
        gc.collect()
        t0 = time.perf_counter()
        report = analyze_graph(graph, target, info)
        times.append(time.perf_counter() - t0)
    analysis_s = statistics.median(times)
    t0 = time.perf_counter()
    text = to_json(report)
    render_s = time.perf_counter() - t0
    totals = report.totals
    json_bytes = len(text.encode())
    del report, text
    gc.collect()
    tracemalloc.start()
    try:
        analyze_graph(graph, target, info)
        heap_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"analysis_s": analysis_s, "analysis_cold_s": times[0], "analysis_all_s": times,
            "render_s": render_s, "json_bytes": json_bytes,
            "analysis_heap_peak_bytes": heap_peak, "coverage": totals["coverage"],
            "report_nodes": totals.get("nodes"), "flops": totals["flops"], "latency_s": totals["latency_s"],
            "unknown_ops": totals["unknown_ops"]}


def worker_graphperf(spec: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    from graphperf.pipeline import ModelRequest, load_graph
    from graphperf.target import load_target

    import_s = time.perf_counter() - t0
    target = load_target(spec.get("target", "h100"))
    if "path" in spec:
        req = ModelRequest(spec["path"])
    else:
        req = ModelRequest(spec["model"], **PHASES[spec["phase"]])
    t0 = time.perf_counter()
    graph, info = load_graph(req)
    capture_s = time.perf_counter() - t0
    out = {"import_s": import_s, "capture_s": capture_s, "nodes": len(graph)}
    out.update(_analyze_timed(graph, target, info))
    out["rss_peak_bytes"] = _rss_peak_bytes()
    return out


def worker_onnx_tool(spec: dict[str, Any]) -> dict[str, Any]:
    import onnx_tool

    t0 = time.perf_counter()
    model = onnx_tool.Model(spec["path"], {"verbose": False})
    if not model.valid:
        raise RuntimeError("onnx_tool.Model: invalid model")
    t1 = time.perf_counter()
    model.graph.shape_infer()
    t2 = time.perf_counter()
    model.graph.profile()
    t3 = time.perf_counter()
    if not model.graph.valid_profile:
        raise RuntimeError("onnx-tool profile() did not produce a valid profile")
    return {"load_s": t1 - t0, "shape_s": t2 - t1, "profile_s": t3 - t2, "total_s": t3 - t0,
            "nodes": len(model.graph.nodemap), "macs": float(model.graph.macs[0]),
            "rss_peak_bytes": _rss_peak_bytes(), "version": getattr(onnx_tool, "VERSION", "?")}


def worker_export_gpt2(spec: dict[str, Any]) -> dict[str, Any]:
    import warnings

    import torch

    from graphperf import models

    wl = models.build("gpt2", config=spec.get("config", "full"), phase="prefill", dtype="float32",
                      device="cpu")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wl.module, wl.args, spec["path"], dynamo=True, opset_version=spec.get("opset", 23),
                          verbose=False)
    return {"export_s": time.perf_counter() - t0, "description": wl.description}


def worker_synthetic(spec: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, HERE)
    from synthetic_onnx import write_model

    t0 = time.perf_counter()
    write_model(spec["path"], spec["nodes"])
    return {"generate_s": time.perf_counter() - t0, "file_bytes": os.path.getsize(spec["path"])}


WORKERS = {"graphperf": worker_graphperf, "onnx_tool": worker_onnx_tool,
           "export_gpt2": worker_export_gpt2, "synthetic": worker_synthetic}


def _worker_main(kind: str, spec_json: str, result_path: str) -> None:
    spec = json.loads(spec_json)
    try:
        result = {"ok": True, **WORKERS[kind](spec)}
    except Exception as exc:  # recorded in the table, not raised: a failing tool is a result
        result = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]}
    with open(result_path, "w") as f:
        json.dump(result, f)


# --- orchestration ---------------------------------------------------------------------------------

def run_case(kind: str, spec: dict[str, Any], timeout: float, log) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; returns its result dict (ok False on failure/timeout)."""
    fd, result_path = tempfile.mkstemp(suffix=".json", prefix="graphperf-bench-")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(spec), result_path]
    label = f"{kind} {spec.get('model', '')}{(':' + spec['phase']) if 'phase' in spec else ''}" \
            f"{os.path.basename(spec.get('path', ''))}"
    log(f"[bench] {label} ...")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        try:
            with open(result_path) as f:
                result = json.load(f)
        except (OSError, ValueError):
            tail = (proc.stdout or "").strip().splitlines()[-1:] or [""]
            result = {"ok": False, "error": f"exit {proc.returncode}: {tail[0][:200]}"}
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - t0
        result = {"ok": False, "error": f"did not finish within {timeout:.0f} s (killed)", "timeout": True}
    finally:
        try:
            os.unlink(result_path)
        except OSError:
            pass
    result["wall_s"] = wall
    log(f"[bench] {label}: {'ok' if result.get('ok') else result.get('error')} ({wall:.1f} s)")
    return result


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu": model or platform.processor() or "unknown", "cores": os.cpu_count(), "ram_bytes": ram,
            "os": platform.platform(), "python": platform.python_version()}


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("graphperf", "torch", "onnx", "onnx-tool"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               check=False).stdout.strip()
        if rev:
            out["git"] = rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        pass
    return out


def _has_onnx_tool() -> bool:
    from importlib.util import find_spec

    return find_spec("onnx_tool") is not None


# --- formatting ------------------------------------------------------------------------------------

def _s(x: Optional[float], digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _mb(x: Optional[float]) -> str:
    return "-" if x is None else f"{x / 1e6:,.0f}"


def _rate(nodes: Optional[int], seconds: Optional[float]) -> str:
    return "-" if not nodes or not seconds else f"{nodes / seconds:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def workload_table(results: list[tuple[str, str, dict]]) -> str:
    header = ["model", "phase", "nodes", "capture s", "analysis s (cold)", f"analysis s (median of {ANALYSIS_REPEATS})",
              "analysis nodes/s", "render (to_json) s",
              "JSON MB", "peak RSS MB (process)", "heap peak MB (analysis, tracemalloc)"]
    rows = []
    for model, phase, r in results:
        if not r.get("ok"):
            rows.append([model, phase, f"failed: {r.get('error')}"] + ["-"] * (len(header) - 3))
            continue
        rows.append([model, phase, f"{r['nodes']:,}", _s(r["capture_s"], 2), _s(r["analysis_cold_s"]),
                     _s(r["analysis_s"]),
                     _rate(r["nodes"], r["analysis_s"]), _s(r["render_s"]), _mb(r["json_bytes"]),
                     _mb(r["rss_peak_bytes"]), _mb(r["analysis_heap_peak_bytes"])])
    return _table(header, rows)


def onnx_table(files: list[dict]) -> str:
    header = ["ONNX file", "nodes", "tool", "load + shapes s", "count s", "total s", "nodes/s (count)",
              "nodes/s (total)", "peak RSS MB", "notes"]
    rows = []
    for f in files:
        name = f["name"]
        gp, ot = f["graphperf"], f.get("onnx_tool")
        if gp.get("ok"):
            total = gp["capture_s"] + gp["analysis_s"]
            rows.append([name, f"{gp['nodes']:,}", "graphperf (capture / analyze_graph)", _s(gp["capture_s"]),
                         _s(gp["analysis_s"]), _s(total), _rate(gp["nodes"], gp["analysis_s"]),
                         _rate(gp["nodes"], total), _mb(gp["rss_peak_bytes"]),
                         f"{gp['flops']:.3g} FLOPs; analysis cold {_s(gp['analysis_cold_s'])} s; render "
                         f"{_s(gp['render_s'])} s; analysis heap peak {_mb(gp['analysis_heap_peak_bytes'])} MB; "
                         f"coverage {gp['coverage']:.0%}"])
        else:
            rows.append([name, "-", "graphperf", "-", "-", "-", "-", "-", "-", f"failed: {gp.get('error')}"])
        if ot is None:
            rows.append([name, "-", "onnx-tool", "-", "-", "-", "-", "-", "-", "not installed (use `make bench`)"])
        elif ot.get("ok"):
            rows.append([name, f"{ot['nodes']:,}", f"onnx-tool {ot.get('version', '')} (load+shape_infer / profile)",
                         _s(ot["load_s"] + ot["shape_s"]), _s(ot["profile_s"]), _s(ot["total_s"]),
                         _rate(ot["nodes"], ot["profile_s"]), _rate(ot["nodes"], ot["total_s"]),
                         _mb(ot["rss_peak_bytes"]), f"{2 * ot['macs']:.3g} FLOPs (2 x MACs); load "
                         f"{_s(ot['load_s'])} s, shape_infer {_s(ot['shape_s'])} s"])
        else:
            rows.append([name, "-", "onnx-tool", "-", "-", "-", "-", "-", "-", f"failed: {ot.get('error')}"])
    return _table(header, rows)


def goals(workloads: list[tuple[str, str, dict]], files: list[dict]) -> list[str]:
    out = []
    big = [(p, r) for m, p, r in workloads if m == "llama3-405b"]
    if big:
        ok = [(p, r) for p, r in big if r.get("ok")]
        if len(ok) == len(big):
            worst_s = max(max(r["analysis_all_s"]) for _, r in ok)
            worst_b = max(r["analysis_heap_peak_bytes"] for _, r in ok)
            met = worst_s < GOAL_405B_ANALYSIS_S and worst_b < GOAL_405B_ANALYSIS_BYTES
            detail = "; ".join(f"{p}: {max(r['analysis_all_s']):.3f} s (slowest of {len(r['analysis_all_s'])} calls), heap peak {r['analysis_heap_peak_bytes'] / 1e6:,.0f} MB"
                               f" (process peak RSS incl. capture {r['rss_peak_bytes'] / 1e6:,.0f} MB)" for p, r in ok)
            out.append(f"- Analysis of llama3-405b in under {GOAL_405B_ANALYSIS_S:g} s and 2 GB: "
                       f"**{'met' if met else 'not met'}** ({detail}).")
        else:
            out.append("- Analysis of llama3-405b in under 5 s and 2 GB: **not measured** (capture failed).")
    rates = [(f"{m} {p}", r["nodes"], r["analysis_s"]) for m, p, r in workloads if r.get("ok")]
    rates += [(f["name"], f["graphperf"]["nodes"], f["graphperf"]["analysis_s"]) for f in files
              if f["graphperf"].get("ok")]
    if rates:
        large = [x for x in rates if x[1] >= 1_000] or rates
        worst = min(large, key=lambda x: x[1] / x[2])
        best = max(rates, key=lambda x: x[1] / x[2])
        met = all(n / s >= GOAL_NODES_PER_S for _, n, s in large)
        out.append(f"- Analysis at >= {GOAL_NODES_PER_S:,} nodes/s (median analysis time, every graph of >= 1,000 "
                   f"nodes): **{'met' if met else 'not met'}** (slowest: {worst[0]}, {worst[1]:,} nodes, at "
                   f"{worst[1] / worst[2]:,.0f} nodes/s; "
                   f"fastest of all: {best[0]} at {best[1] / best[2]:,.0f} nodes/s; small graphs are "
                   "dominated by fixed per-call costs).")
    for f in files:
        gp, ot = f["graphperf"], f.get("onnx_tool")
        if ot is None:
            out.append(f"- Faster than onnx-tool on {f['name']}: **not measured** (onnx-tool not installed).")
        elif not gp.get("ok"):
            out.append(f"- Faster than onnx-tool on {f['name']}: **not met** (graphperf failed: {gp.get('error')}).")
        elif not ot.get("ok"):
            gtot = gp["capture_s"] + gp["analysis_s"]
            why = "did not finish" if ot.get("timeout") else "failed"
            out.append(f"- Faster than onnx-tool on {f['name']}: **no comparison: onnx-tool {why}** "
                       f"(graphperf {gtot:.2f} s end to end; onnx-tool: {ot.get('error')}).")
        else:
            gtot = gp["capture_s"] + gp["analysis_s"]
            met = gtot < ot["total_s"]
            met_count = gp["analysis_s"] < ot["profile_s"]
            out.append(f"- Faster than onnx-tool on {f['name']}: end to end (load + shapes + count) "
                       f"**{'met' if met else 'not met'}**: graphperf {gtot:.3f} s vs onnx-tool {ot['total_s']:.3f} s "
                       f"({ot['total_s'] / gtot:.1f}x); counting step alone **{'met' if met_count else 'not met'}**: "
                       f"analyze_graph {gp['analysis_s']:.3f} s vs profile() {ot['profile_s']:.3f} s "
                       f"({gp['analysis_s'] / ot['profile_s']:.1f}x the time; analyze_graph also projects latency, "
                       "runs liveness and builds the report).")
    return out


def render(meta: dict, workloads, files, extra: list[str]) -> str:
    m = meta["machine"]
    v = meta["versions"]
    parts = [
        "# graphperf benchmark results",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 1024**3:.1f} GiB RAM ({m['os']}); "
        "one benchmark process at a time",
        f"- Command: `{meta['command']}`",
        f"- Versions: Python {m['python']}, " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Target: {meta['target']}; every case ran in its own subprocess (peaks are per case). "
        f"Wall time of the whole run: {meta['wall_s']:.0f} s. Load average (1/5/15 min) at start "
        f"{'/'.join(f'{x:.2f}' for x in meta['load'][0])}, at end {'/'.join(f'{x:.2f}' for x in meta['load'][1])} "
        "(the machine is shared; other processes were not stopped).",
        "",
        "## torch.export workloads (meta device: no weights materialised)",
        "",
        "Capture = `load_graph` (build on meta, torch.export, capture). Analysis = `analyze_graph` (count, project, "
        f"liveness, report), called {ANALYSIS_REPEATS} times: the first call (cold) and the median. Render = `to_json`. Peak RSS is the process's (ru_maxrss, capture "
        "included); heap peak is tracemalloc's peak during one more `analyze_graph` call. Nodes are those of "
        "the captured graph, the input of `analyze_graph` (its canonicalization may fold some, e.g. bias Adds, so "
        "the report can list fewer); nodes/s = nodes / analysis s.",
        "",
        workload_table(workloads),
        "",
        "## ONNX files: graphperf vs onnx-tool, same file, same run",
        "",
        "graphperf: load + shapes = capture (onnx load, shape inference, Graph); count = `analyze_graph` "
        "(it also projects latency, liveness and builds the report). onnx-tool: load + shapes = "
        "`onnx_tool.Model(path)` + `graph.shape_infer()`; count = `graph.profile()`.",
        "",
        onnx_table(files),
        "",
        "## Goals",
        "",
        *goals(workloads, files),
    ]
    if extra:
        parts += ["", "## Notes", "", *extra]
    return "\n".join(parts) + "\n"


def profile_case(case: str, target: str, top: int) -> None:
    """cProfile of analyze_graph on one case (MODEL:PHASE or an .onnx path); prints the top functions."""
    import cProfile
    import pstats

    from graphperf.pipeline import ModelRequest, analyze_graph, load_graph
    from graphperf.target import load_target

    if case.endswith(".onnx"):
        req = ModelRequest(case)
    else:
        model, _, phase = case.partition(":")
        req = ModelRequest(model, **PHASES[phase or "prefill"])
    graph, info = load_graph(req)
    tgt = load_target(target)
    prof = cProfile.Profile()
    prof.enable()
    analyze_graph(graph, tgt, info)
    prof.disable()
    print(f"{len(graph)} nodes")
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker_main(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description="graphperf speed and scale benchmarks")
    ap.add_argument("--out", help="write the results (markdown, with machine, date and command) to this file")
    ap.add_argument("--quick", action="store_true", help="smoke run: llama3-8b and a 10k-node synthetic graph")
    ap.add_argument("--synthetic-nodes", help="comma-separated sizes of the synthetic ONNX graphs (default "
                    "100000,10000: onnx-tool's loader is quadratic, the 10k graph gives a finished side-by-side; "
                    "10000 with --quick)")
    ap.add_argument("--models", help="comma-separated workloads (default llama3-8b,llama3-70b,llama3-405b)")
    ap.add_argument("--no-gpt2", action="store_true", help="skip the exported gpt2 ONNX files")
    ap.add_argument("--no-onnx-tool", action="store_true", help="skip onnx-tool even if it is installed")
    ap.add_argument("--target", default="h100")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per case before it is killed")
    ap.add_argument("--onnx-tool-timeout", type=float, default=1800.0,
                    help="seconds per onnx-tool case before it is killed (recorded as not finished)")
    ap.add_argument("--profile", metavar="CASE", help="cProfile analyze_graph on MODEL:PHASE or FILE.onnx, then exit")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args(argv)

    if a.profile:
        profile_case(a.profile, a.target, a.top)
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    models = a.models.split(",") if a.models else (["llama3-8b"] if a.quick else list(LLAMA_MODELS))
    n_syn = [int(x) for x in (a.synthetic_nodes or ("10000" if a.quick else "100000,10000")).split(",")]
    load_start = os.getloadavg()
    use_onnx_tool = not a.no_onnx_tool and _has_onnx_tool()
    extra: list[str] = []
    if not use_onnx_tool:
        extra.append("- onnx-tool was not run " + ("(--no-onnx-tool)." if a.no_onnx_tool else
                     "(not installed in this environment; `make bench` installs it in .venv-bench)."))

    workloads = []
    for model in models:
        for phase in PHASES:
            r = run_case("graphperf", {"model": model, "phase": phase, "target": a.target}, a.timeout, log)
            workloads.append((model, phase, r))

    files = []
    with tempfile.TemporaryDirectory(prefix="graphperf-bench-") as tmp:
        onnx_inputs = []
        for n in n_syn:
            path = os.path.join(tmp, f"synthetic_{n}.onnx")
            gen = run_case("synthetic", {"path": path, "nodes": n}, a.timeout, log)
            if gen.get("ok"):
                onnx_inputs.append((f"synthetic MLP blocks, {n:,} nodes ({gen['file_bytes'] / 1e6:.0f} MB)", path))
            else:
                extra.append(f"- Synthetic ONNX generation ({n} nodes) failed: {gen.get('error')}")
        for opset in () if (a.quick or a.no_gpt2) else (23, 18):
            # gpt2 (124M) from graphperf.models, real float32 weights on the CPU, seq 1024. Opset 23 keeps
            # attention as one Attention node; opset 18 decomposes it (MatMul, Softmax, ...).
            path = os.path.join(tmp, f"gpt2_prefill_opset{opset}.onnx")
            exp = run_case("export_gpt2", {"path": path, "config": "full", "opset": opset}, a.timeout, log)
            if exp.get("ok"):
                size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
                           if f.startswith(os.path.basename(path)))
                onnx_inputs.append((f"gpt2 124M prefill seq 1024, torch.onnx.export(dynamo=True, opset_version="
                                    f"{opset}) ({size / 1e6:.0f} MB with external weights)", path))
            else:
                extra.append(f"- Exporting gpt2 to ONNX (opset {opset}) failed: {exp.get('error')}")
        for name, path in onnx_inputs:
            entry = {"name": name,
                     "graphperf": run_case("graphperf", {"path": path, "target": a.target}, a.timeout, log)}
            if use_onnx_tool:
                entry["onnx_tool"] = run_case("onnx_tool", {"path": path}, a.onnx_tool_timeout, log)
            files.append(entry)

    meta = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "versions": versions(),
        "command": " ".join(shlex.quote(x) for x in
                            [os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT)
                             else sys.executable, os.path.relpath(os.path.abspath(__file__), ROOT), *argv]),
        "target": a.target,
        "wall_s": time.perf_counter() - start,
        "load": (load_start, os.getloadavg()),
    }
    text = render(meta, workloads, files, extra)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        log(f"[bench] wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
