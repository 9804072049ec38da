"""HTML report at scale (issue 7): a 10k-node report stays under 5 MB and opens in under 2 s.

Builds a synthetic ONNX chain of `--nodes` nodes (MLP-like blocks of ten ops named as
torch.onnx.export(dynamo=False) names them, so every node has a layer path), captures it with
`capture_onnx`, analyses it on `--target`, renders `--format html`, and opens the page
`--runs` times in headless Chromium (the DevTools-pipe driver of tests/e2e/browser.py, a fresh
tab each time). "Opens" is navigation start to two animation frames after the load event, so
parsing, layout and the first paint of every SVG point are inside it. It also checks in the
browser that the chart holds one point per placeable node and that nothing was logged to the console.

    .venv/bin/python benchmarks/html_bench.py                       # 10k nodes, table to stdout
    .venv/bin/python benchmarks/html_bench.py --out benchmarks/RESULTS_HTML.md

Exits 1 when a budget (5 MB, 2 s) is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphperf.capture.onnx_capture import capture_onnx  # noqa: E402
from graphperf.pipeline import analyze_graph  # noqa: E402
from graphperf.report.html import placeable, render_html  # noqa: E402
from graphperf.target import load_target  # noqa: E402
from tests.e2e.browser import Browser, chromium_path  # noqa: E402

SIZE_BUDGET_BYTES = 5_000_000
OPEN_BUDGET_S = 2.0
NODES_PER_BLOCK = 10


def chain_model(nodes: int, hidden: int = 256, ffn: int = 1024, seq: int = 128) -> onnx.ModelProto:
    """`nodes` nodes in blocks of LayerNorm, MatMul, Gelu, MatMul, Add (residual), Mul, Sigmoid, Mul (a gate),
    Softmax, Reshape (free: it is left off the chart), sharing one set of weights (the file stays small).
    No bias adds, so canonicalization folds nothing and the report has exactly `nodes` nodes."""
    rng = np.random.default_rng(0)

    def init(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.02).astype(np.float32), name)

    inits = [init("g", (hidden,)), init("b", (hidden,)), init("w_up", (hidden, ffn)), init("w_dn", (ffn, hidden)),
             init("scale", (hidden,)), numpy_helper.from_array(np.array([1, seq, hidden], np.int64), "shape")]
    out, x, i = [], "x", 0
    while len(out) < nodes:
        p = f"/layers.{i}"
        v = {k: f"{p}/{k}" for k in ("ln", "up", "act", "dn", "res", "scaled", "sig", "gated", "soft", "y")}
        block = [("LayerNormalization", [x, "g", "b"], v["ln"], "norm/LayerNormalization", {"axis": -1}),
                 ("MatMul", [v["ln"], "w_up"], v["up"], "mlp/up/MatMul", {}),
                 ("Gelu", [v["up"]], v["act"], "mlp/act/Gelu", {}),
                 ("MatMul", [v["act"], "w_dn"], v["dn"], "mlp/down/MatMul", {}),
                 ("Add", [x, v["dn"]], v["res"], "Add", {}),
                 ("Mul", [v["res"], "scale"], v["scaled"], "gate/Mul", {}),
                 ("Sigmoid", [v["scaled"]], v["sig"], "gate/Sigmoid", {}),
                 ("Mul", [v["res"], v["sig"]], v["gated"], "gate/Mul_1", {}),
                 ("Softmax", [v["gated"]], v["soft"], "mix/Softmax", {"axis": -1}),
                 ("Reshape", [v["soft"], "shape"], v["y"], "Reshape", {})]
        for op, ins, o, name, attrs in block[:nodes - len(out)]:
            out.append(helper.make_node(op, ins, [o], name=f"{p}/{name}", **attrs))
        x = out[-1].output[0]
        i += 1
    graph = helper.make_graph(out, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hidden])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def run(nodes: int, targets: list[str], runs: int, work: Path) -> dict:
    t0 = time.perf_counter()
    graph = capture_onnx(chain_model(nodes))
    info = {"name": f"chain-{nodes}", "frontend": "onnx", "description": f"synthetic {nodes}-node ONNX chain"}
    reports = [analyze_graph(graph, load_target(t), info) for t in targets]
    analyse_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = render_html(reports)
    render_s = time.perf_counter() - t0
    assert page == render_html(reports), "not deterministic"
    path = work / f"chain-{nodes}-{len(targets)}.html"
    path.write_text(page, encoding="utf-8")
    expected = ",".join(str(sum(1 for r in rep.nodes if placeable(r))) for rep in reports)
    loads, paints = [], []
    with Browser() as browser:
        for _ in range(runs):
            opened = browser.open(path, full_page=False)
            attrs = dict(re.findall(r'(data-gp-[a-z-]+)="([^"]*)"', re.search(r"<html[^>]*>", opened.dom).group(0)))
            assert attrs.get("data-gp-points") == expected, (attrs, expected)
            assert not opened.problems, opened.problems
            loads.append(opened.load_s)
            paints.append(opened.painted_s)
        nojs = browser.open(path, javascript=False, full_page=False)
    return {"nodes": len(reports[0].nodes), "targets": ",".join(targets), "points": expected, "bytes": path.stat().st_size, "analyse_s": analyse_s,
            "render_s": render_s, "load_s": statistics.median(loads), "open_s": statistics.median(paints),
            "open_max_s": max(paints), "nojs_load_s": nojs.load_s, "runs": runs}


def _machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    version = subprocess.run([chromium_path() or "chromium", "--version"], capture_output=True, text=True).stdout
    return (f"{os.cpu_count()} vCPUs of {cpu}, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, {version.strip() or 'chromium (version unknown)'}")


def markdown(rows: list[dict], argv: list[str]) -> str:
    ok = all(_within(r) for r in rows)
    lines = [
        "## HTML report at scale", "",
        f"- machine: {_machine()}",
        f"- date: {date.today().isoformat()}",
        "- command: `" + " ".join([".venv/bin/python", "benchmarks/html_bench.py", *argv]) + "`",
        "- opens = navigation start to two animation frames after the load event (parse, layout, first paint), "
        "median of the runs in a fresh tab each; headless Chromium, software rendering (--disable-gpu)", "",
        "| nodes | targets | points | file size | analyse | render | load event | opens (median) | opens (max) | "
        "load, JS off |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['nodes']} | {r['targets']} | {r['points']} | {r['bytes'] / 1e6:.2f} MB | {r['analyse_s']:.2f} s | "
                     f"{r['render_s']:.2f} s | {r['load_s']:.2f} s | {r['open_s']:.2f} s | {r['open_max_s']:.2f} s | "
                     f"{r['nojs_load_s']:.2f} s |")
    lines += ["", f"Budgets for a 10k-node report (one target): file under {SIZE_BUDGET_BYTES / 1e6:g} MB, opens "
              f"under {OPEN_BUDGET_S:g} s: {'met' if ok else 'MISSED'}. Comparison pages (several targets) carry "
              "one chart per target and are listed for information.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", default="1000,10000", help="comma-separated graph sizes (default 1000,10000)")
    ap.add_argument("--target", default="h100", help="target of the budgeted single-target pages")
    ap.add_argument("--compare", default="h100,mi300x,tpu-v5p",
                    help="targets of an extra comparison page at the largest size ('' for none)")
    ap.add_argument("--runs", type=int, default=5, help="page opens per size (median reported)")
    ap.add_argument("--out", help="also write the markdown results to this file")
    args = ap.parse_args(argv)
    if not chromium_path():
        print("error: chromium not found: apt-get install chromium chromium-driver (make test does)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [int(n) for n in args.nodes.split(",")]
        rows = [run(n, [args.target], args.runs, Path(tmp)) for n in sizes]
        if args.compare:
            rows.append(run(max(sizes), args.compare.split(","), args.runs, Path(tmp)))
    text = markdown(rows, argv)
    print(text)
    if args.out:
        Path(args.out).write_text("# HTML report benchmark results\n\n" + text)
    return 0 if all(_within(r) for r in rows) else 1


def _within(row: dict) -> bool:
    """The budget applies to single-target reports of 10k nodes or more."""
    if row["nodes"] < 10_000 or "," in row["targets"]:
        return True
    return row["bytes"] < SIZE_BUDGET_BYTES and row["open_s"] < OPEN_BUDGET_S


if __name__ == "__main__":
    sys.exit(main())
