"""HTML report at scale (issue 7): a 10k-node report stays under 5 MB and opens in under 2 s;
the whatif and correlate pages are measured beside it (`run_whatif`, `run_correlate`).

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
    path, render_s = _render(lambda: render_html(reports), work / f"chain-{nodes}-{len(targets)}.html")
    expected = ",".join(str(sum(1 for r in rep.nodes if placeable(r))) for rep in reports)
    return {"page": "analyze", "nodes": len(reports[0].nodes), "targets": ",".join(targets), "analyse_s": analyse_s,
            "render_s": render_s, **_open(path, runs, "data-gp-points", expected)}


def _render(render, path: Path) -> tuple[Path, float]:
    """Render a page (timed), check that a second rendering gives the same bytes, and write it to `path`."""
    t0 = time.perf_counter()
    page = render()
    render_s = time.perf_counter() - t0
    assert page == render(), "not deterministic"
    path.write_text(page, encoding="utf-8")
    return path, render_s


def _open(path: Path, runs: int, attr: str, expected: str) -> dict:
    """Open `path` `runs` times (checking the self-check attribute `attr` and the console), then once with
    JavaScript off; the timings of a results row."""
    loads, paints = [], []
    with Browser() as browser:
        for _ in range(runs):
            opened = browser.open(path, full_page=False)
            attrs = dict(re.findall(r'(data-gp-[a-z-]+)="([^"]*)"', re.search(r"<html[^>]*>", opened.dom).group(0)))
            assert attrs.get(attr) == expected, (attrs, expected)
            assert not opened.problems, opened.problems
            loads.append(opened.load_s)
            paints.append(opened.painted_s)
        nojs = browser.open(path, javascript=False, full_page=False)
    return {"points": expected, "bytes": path.stat().st_size, "load_s": statistics.median(loads),
            "open_s": statistics.median(paints), "open_max_s": max(paints), "nojs_load_s": nojs.load_s, "runs": runs}


def run_whatif(nodes: int, target: str, runs: int, work: Path) -> dict:
    """The `whatif --format html` page of the chain with every fusion rule and a 5-point HBM sweep;
    "points" are the bar pairs (per rule, then per op; at most DEFAULT_TOP each)."""
    from graphperf.passes.whatif import FUSE_RULES, whatif
    from graphperf.report.html_whatif import DEFAULT_TOP, render_whatif_html

    t0 = time.perf_counter()
    graph = capture_onnx(chain_model(nodes))
    result = whatif(graph, load_target(target), {"name": f"chain-{nodes}"}, fuse=list(FUSE_RULES),
                    sweep_spec=("hbm_gbps", [1000.0, 2000.0, 3000.0, 4000.0, 5000.0]))
    analyse_s = time.perf_counter() - t0
    path, render_s = _render(lambda: render_whatif_html(result), work / f"whatif-{nodes}.html")
    groups = [len(r["groups"]) for r in result.rewrites if r["rewrite"] == "fuse" and r["groups"]]
    b = {g["name"]: g["latency_s"] for g in result.before.by_op}
    a = {g["name"]: g["latency_s"] for g in result.after.by_op}
    ops = sum(1 for op in set(a) | set(b) if a.get(op, 0.0) != b.get(op, 0.0))
    expected = ",".join(str(min(DEFAULT_TOP, n)) for n in [*groups, ops])
    return {"page": "whatif", "nodes": len(result.before.nodes), "targets": target, "analyse_s": analyse_s,
            "render_s": render_s, **_open(path, runs, "data-gp-pairs", expected)}


def run_correlate(nodes: int, runs: int, work: Path) -> dict:
    """The `correlate --format html` page of a narrow chain (hidden 64: cheap to run) profiled under
    onnxruntime (3 measured runs) and projected on the host target; "points" are the scatter points."""
    from graphperf.correlate import correlate_onnx, profile_onnx
    from graphperf.report.html_correlate import plotted_rows, render_correlate_html

    model = work / f"chain-{nodes}-narrow.onnx"
    onnx.save(chain_model(nodes, hidden=64, ffn=256, seq=16), str(model))
    t0 = time.perf_counter()
    prof = profile_onnx(str(model), str(work / "chain.profile.json"), runs=3, warmup=1)
    c = correlate_onnx(str(model), prof, load_target("host"))
    analyse_s = time.perf_counter() - t0
    path, render_s = _render(lambda: render_correlate_html(c), work / f"correlate-{nodes}.html")
    expected = str(sum(1 for r in c.rows if r.projected_s and r.measured_s > 0))
    assert expected == str(len(plotted_rows(c)))
    return {"page": "correlate", "nodes": len(c.rows), "targets": "host", "analyse_s": analyse_s,
            "render_s": render_s, **_open(path, runs, "data-gp-points", expected)}


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
        "| page | nodes | targets | points | file size | analyse | render | load event | opens (median) | opens (max) | "
        "load, JS off |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['page']} | {r['nodes']} | {r['targets']} | {r['points']} | {r['bytes'] / 1e6:.2f} MB | "
                     f"{r['analyse_s']:.2f} s | "
                     f"{r['render_s']:.2f} s | {r['load_s']:.2f} s | {r['open_s']:.2f} s | {r['open_max_s']:.2f} s | "
                     f"{r['nojs_load_s']:.2f} s |")
    lines += ["", f"Budgets for a 10k-node report (one target): file under {SIZE_BUDGET_BYTES / 1e6:g} MB, opens "
              f"under {OPEN_BUDGET_S:g} s: {'met' if ok else 'MISSED'}. Comparison pages (several targets) carry "
              "one chart per target and are listed for information.",
              "", "The whatif page: every fusion rule and a 5-point hbm_gbps sweep on the chain; points = bar pairs "
              "per chart (at most 30 each); analyse = capture + what-if. The correlate page: a narrow chain "
              "(hidden 64) profiled under onnxruntime on this machine, projected on `host`; nodes = matched rows, "
              "points = scatter points; analyse = profile (1 warm-up + 3 runs) + correlate.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", default="1000,10000", help="comma-separated graph sizes (default 1000,10000)")
    ap.add_argument("--target", default="h100", help="target of the budgeted single-target pages")
    ap.add_argument("--compare", default="h100,mi300x,tpu-v5p",
                    help="targets of an extra comparison page at the largest size ('' for none)")
    ap.add_argument("--runs", type=int, default=5, help="page opens per size (median reported)")
    ap.add_argument("--whatif-nodes", type=int, default=10000, help="graph size of the whatif page (0: none)")
    ap.add_argument("--correlate-nodes", type=int, default=1000, help="graph size of the correlate page (0: none)")
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
        if args.whatif_nodes:
            rows.append(run_whatif(args.whatif_nodes, args.target, args.runs, Path(tmp)))
        if args.correlate_nodes:
            rows.append(run_correlate(args.correlate_nodes, args.runs, Path(tmp)))
    text = markdown(rows, argv)
    print(text)
    if args.out:
        Path(args.out).write_text("# HTML report benchmark results\n\n" + text)
    return 0 if all(_within(r) for r in rows) else 1


def _within(row: dict) -> bool:
    """The budget applies to single-target analyze reports of 10k nodes or more."""
    if row["page"] != "analyze" or row["nodes"] < 10_000 or "," in row["targets"]:
        return True
    return row["bytes"] < SIZE_BUDGET_BYTES and row["open_s"] < OPEN_BUDGET_S


if __name__ == "__main__":
    sys.exit(main())
