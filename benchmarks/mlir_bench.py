"""Time to analyse at the MLIR level (torch-mlir, linalg) next to the graph level, per workload.

Each case runs in its own subprocess (cold imports excluded: torch and torch_mlir are imported
before the clock starts), so one case's caches do not speed up the next.

- graph level: capture = `load_graph` (build on the meta device, torch.export, capture);
  analysis = `analyze_graph` (canonicalize, count, project, liveness, report).
- MLIR level: lower = `load_mlir` (build with real weights on the CPU, torch.export, graph-level
  capture, torch-mlir decompositions + FX import, torch backend pipeline, linalg pipeline,
  generalize + convert to the linalg graph), split into its stages; analysis = `analyze_mlir`
  (the same pipeline on the linalg graph, plus the tile search of every contraction).

Usage:
    python benchmarks/mlir_bench.py                          # every workload, tiny config, every phase
    python benchmarks/mlir_bench.py --also resnet50:full --also gpt2:full:prefill
    python benchmarks/mlir_bench.py --out benchmarks/RESULTS_MLIR.md
Nothing here asserts a speed.
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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _case(name: str, config: str, phase: str | None, target: str) -> dict:
    import torch  # (imports are not timed)
    import torch_mlir  # noqa: F401

    from graphperf.mlir.analyze import analyze_mlir, load_mlir
    from graphperf.pipeline import ModelRequest, analyze_graph, load_graph
    from graphperf.target import load_target

    tgt = load_target(target)
    req = ModelRequest(name, config=config, phase=phase)
    # warm-up, untimed: the first torch.export in a process pays for lazy imports (about 1 s)
    torch.export.export(torch.nn.Linear(4, 4), (torch.randn(2, 4),), strict=False)
    t0 = time.perf_counter()
    graph, info = load_graph(req)
    t1 = time.perf_counter()
    report = analyze_graph(graph, tgt, info)
    t2 = time.perf_counter()
    capture = load_mlir(req)
    t3 = time.perf_counter()
    mreport = analyze_mlir(capture, tgt)
    t4 = time.perf_counter()
    stages = {**capture.lowered.seconds, "convert_s": capture.seconds.get("convert_s", 0.0)}
    return {"model": name, "config": config, "phase": phase or "-", "graph_nodes": len(graph),
            "graph_capture_s": t1 - t0, "graph_analysis_s": t2 - t1,
            "mlir_nodes": len(capture.graph), "mlir_lower_s": t3 - t2, "mlir_analysis_s": t4 - t3,
            "stages": stages, "graph_flops": report.totals["flops"], "mlir_flops": mreport.totals["flops"],
            "warnings": len(capture.warnings)}


def _run_case(args, name, config, phase) -> dict:
    cmd = [sys.executable, __file__, "--case", f"{name}:{config}:{phase or ''}", "--target", args.target]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"model": name, "config": config, "phase": phase or "-", "error": f"timeout after {args.timeout} s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        err = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "config": config, "phase": phase or "-", "error": err[:200]}
    return json.loads(lines[-1])


def _markdown(rows: list[dict], args, wall_s: float) -> str:
    import torch
    import torch_mlir  # noqa: F401

    cpu = platform.processor() or platform.machine()
    out = ["# graphperf MLIR-level benchmark: time to analyse, MLIR level vs graph level", "",
           f"- Date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
           f"- Machine: {cpu}, {os.cpu_count()} cores ({platform.platform()}); shared with other processes, "
           f"load average at start {args.load_start}",
           f"- Command: `{' '.join(shlex.quote(a) for a in ['.venv/bin/python', 'benchmarks/mlir_bench.py', *sys.argv[1:]])}`",
           f"- Versions: Python {platform.python_version()}, torch {torch.__version__}, "
           f"torch-mlir {_version('torch-mlir')}; target {args.target}; each case in its own subprocess; "
           f"wall time of the run {wall_s:.0f} s", "",
           "Graph level: capture = `load_graph` (meta device, torch.export, capture), analysis = `analyze_graph`. "
           "MLIR level: lower = `load_mlir` (real weights on the CPU, torch.export, torch-mlir import, torch and "
           "linalg pipelines, conversion to the linalg graph; four stages are listed, the rest of lower s is building the workload with weights, torch.export and the graph-level capture), analysis = `analyze_mlir` "
           "(count, project, report, tile search of every contraction). Nodes: graph nodes vs linalg-graph ops.", "",
           "| model | config | phase | graph nodes | graph capture s | graph analysis s | graph total s | MLIR ops | "
           "MLIR lower s | (import / torch / linalg / convert s) | MLIR analysis s | MLIR total s | MLIR / graph | "
           "FLOPs graph / MLIR |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['config']} | {r['phase']} | | | | | | | | | | | {r['error']} |")
            continue
        g = r["graph_capture_s"] + r["graph_analysis_s"]
        m = r["mlir_lower_s"] + r["mlir_analysis_s"]
        st = r["stages"]
        out.append(f"| {r['model']} | {r['config']} | {r['phase']} | {r['graph_nodes']:,} | {r['graph_capture_s']:.2f} | "
                   f"{r['graph_analysis_s']:.3f} | {g:.2f} | {r['mlir_nodes']:,} | {r['mlir_lower_s']:.2f} | "
                   f"{st.get('import_s', 0):.2f} / {st.get('to_torch_s', 0):.2f} / {st.get('to_linalg_s', 0):.2f} / "
                   f"{st.get('convert_s', 0):.2f} | {r['mlir_analysis_s']:.3f} | {m:.2f} | {m / g:.1f}x | "
                   f"{r['graph_flops']:.4g} / {r['mlir_flops']:.4g} |")
    out += ["", "Reading: the MLIR level lowers through torch-mlir on every analysis, so its time is the FX import "
            "(torch-mlir's decompositions, and the weights copied into MLIR constants: it grows with the weight "
            "bytes), the torch and linalg pipelines and the conversion of every op to the linalg graph (4-5x as "
            "many ops as graph nodes); counting and projecting that graph stays in tens of milliseconds. FLOPs "
            "differ only by the lowering's real extra work (layer_norm's second mean, conv biases that start the accumulator; "
            "graphperf/mlir/__init__.py lists every difference; tests/mlir/test_acceptance.py pins them). "
            "Full-size LLMs are refused at the MLIR level (their weights would have to be materialised as "
            "constants).", ""]
    return "\n".join(out)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--target", default="h100")
    ap.add_argument("--also", action="append", default=[], metavar="MODEL:CONFIG[:PHASE]",
                    help="Extra (bigger) cases after the tiny ones.")
    ap.add_argument("--timeout", type=int, default=600, help="Seconds per case.")
    ap.add_argument("--out", help="Write the markdown here (default: stdout).")
    args = ap.parse_args()
    if args.case:
        name, config, phase = args.case.split(":")
        print(json.dumps(_case(name, config, phase or None, args.target)))
        return
    from graphperf import models

    args.load_start = "/".join(f"{x:.2f}" for x in os.getloadavg())
    cases = [(s.name, "tiny", p) for s in models.list_models() for p in s.phases]
    for extra in args.also:
        parts = extra.split(":")
        cases.append((parts[0], parts[1], parts[2] if len(parts) > 2 else None))
    start = time.perf_counter()
    rows = []
    for name, config, phase in cases:
        rows.append(_run_case(args, name, config, phase))
        print(f"{name} {config} {phase}: {rows[-1].get('error') or 'ok'}", file=sys.stderr)
    text = _markdown(rows, args, time.perf_counter() - start)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
