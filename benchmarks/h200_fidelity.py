"""How far graphperf's projections are from the H200 measurements in shared/h200, on data the fit saw and on
data it did not.

1. Kernels: the sweep rows (GEMM, attention, elementwise) split once by `kernel_fit.split` (about one row in
   three held out). The kernel model is fitted on the other rows plus the --fit traces (the same command as
   the bundled h200 target's sources name), then each group's median |projected / measured - 1| is reported
   on the fitted and the held-out rows, with the sweep timer (do_bench's event latency and L2 write-back,
   fitted with the model) and without it (device_s alone against the do_bench time).
2. Workloads: every trace of shared/h200/traces, correlated with the bundled h200 target: projected device
   time (sum of node device_s) against the measured kernel sum; per-node median |error| of rows >= 20 us; the
   simulated wall of `--mode eager` against the measured eager wall (measurements.json `workloads`, no
   profiler) and against the profiled step (ProfilerStep span); `--mode graph` against the CUDA-graph replay
   and `--mode compiled` against torch.compile's wall where measured. Workloads whose traces the fit used
   are marked "fit".
3. The bundled h200 target's fitted fields against this run's fit (they must agree: the target is what this
   fit wrote), and the eager host figures refitted (`host_fit`) against the bundled ones.

Usage:
    .venv/bin/python benchmarks/h200_fidelity.py [--data ../shared/h200] [--out benchmarks/RESULTS_H200.md]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "h200")
#: Traces the bundled h200 target was fitted on; the others are held out.
FIT_TRACES = ("llama3-8b_prefill_b1_s2048_bfloat16_sdpa", "gpt2_prefill_b8_s1024_bfloat16_sdpa",
              "bert-base_forward_b32_s128_float32_sdpa", "resnet50_forward_b32_img_float32_sdpa")


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _spct(x) -> str:
    return "-" if x is None else f"{x:+.1%}"


def trace_path(data: str, key: str) -> str:
    return os.path.join(data, "traces", key + ".json.gz")


def fit_command(data: str) -> list[str]:
    """The `graphperf calibrate --fit` arguments that fitted the bundled h200 target."""
    rel = os.path.relpath(data, ROOT)
    held = [k for k in _trace_keys(data) if k not in FIT_TRACES]
    return (["--target", "h200", "--fit", os.path.join(rel, "measurements.json")]
            + [a for k in FIT_TRACES for a in ("--fit", os.path.join(rel, "traces", k + ".json.gz"))]
            + [a for k in held for a in ("--holdout", os.path.join(rel, "traces", k + ".json.gz"))])


def _trace_keys(data: str) -> list[str]:
    return sorted(f[: -len(".json.gz")] for f in os.listdir(os.path.join(data, "traces")) if f.endswith(".json.gz"))


def kernels(data: str) -> tuple[str, dict]:
    from graphperf.calibrate.gpu_fit import run_gpu_fit
    from graphperf.calibrate.kernel_fit import SweepTimer, errors_by_group
    from graphperf.target import load_target

    args = fit_command(data)
    fits = [args[i + 1] for i, a in enumerate(args) if a == "--fit"]
    holds = [args[i + 1] for i, a in enumerate(args) if a == "--holdout"]
    os.chdir(ROOT)
    base = load_target("h200")
    result = run_gpu_fit(fits, holds, base)
    out = result["outcome"]
    lines = ["| rows | group | n | median abs error (with sweep timer) | rows >= 20 us | device_s alone vs do_bench |",
             "|---|---|---|---|---|---|"]
    for label, rows in (("fitted", result["rows"]["fitted"]), ("held out", result["rows"]["held_out"])):
        timed = errors_by_group(rows, out.target, out.timer)
        raw = errors_by_group(rows, out.target, SweepTimer())
        for g, e in timed.items():
            raw_text = _pct(raw[g]["median_ape"]) if g != "trace" else "(traces: kernel time)"
            lines.append(f"| {label} | {g} | {e['rows']} | {_pct(e['median_ape'])} | {_pct(e['median_ape_20us'])} | "
                         f"{raw_text} |")
    drift = {f: (v, getattr(base, f)) for f, v in out.fitted.items()}  # base is the bundled target
    lines += ["", f"Sweep timer fitted with the model: offset {out.timer.offset_us:.3g} us, dirty-L2 share "
                  f"{out.timer.dirty_share:.3g}.", "",
              "| field | this fit | bundled h200 |", "|---|---|---|"]
    lines += [f"| {f} | {a:.4g} | {b if b is None else format(b, '.4g')} |" for f, (a, b) in drift.items()]
    return "\n".join(lines), {"fitted": out.fitted, "timer": vars(out.timer)}


def workloads(data: str) -> str:
    from graphperf.api import analyze
    from graphperf.correlate.match import correlate
    from graphperf.target import load_target

    meas = json.load(open(os.path.join(data, "measurements.json")))
    walls = {w["key"]: w["median_ms"] * 1e-3 for w in meas["workloads"]}
    graphs = {g["key"]: g["graph_median_ms"] * 1e-3 for g in meas.get("graphs", [])}
    compiled = {c["key"]: c["median_ms"] * 1e-3 for c in meas.get("compiled", [])}
    target = load_target("h200")
    rows = ["| workload | kernel fit | host fit | kernel sum ms | device_s ms | device error | per node >= 20 us | "
            "eager wall ms | projected eager ms | eager error | profiled step ms | vs profiled step |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    pooled = []
    extra = []
    dev_err, wall_err, node_err = [], [], []
    for key in _trace_keys(data):
        req = _request_from_key(key)
        corr = correlate(req.ref, trace_path(data, key), target, request=req, mode="eager")
        st = corr.stats
        kernel_s, device_s = st["measured_kernel_s"], st["projected_device_s"]
        eager_s = st["projected_wall_s"]  # the eager wall of the same projection
        wall = walls.get(key)
        d_err = device_s / kernel_s - 1
        w_err = (eager_s / wall - 1) if wall else None
        dev_err.append(abs(d_err))
        node_err.append(st["median_ape_20us"])
        if w_err is not None:
            wall_err.append(abs(w_err))
        step = st.get("measured_wall_s")
        pooled += [abs(r.projected_s / r.measured_s - 1) for r in corr.rows
                   if r.measured_s >= 20e-6 and r.projected_s is not None]
        rows.append(f"| {key} | {'fit' if key in FIT_TRACES else 'held out'} | "
                    f"{'fit' if key in HOST_FIT else 'held out'} | {kernel_s * 1e3:.2f} | "
                    f"{device_s * 1e3:.2f} | {_spct(d_err)} | {_pct(st['median_ape_20us'])} | "
                    f"{'-' if wall is None else f'{wall * 1e3:.2f}'} | {eager_s * 1e3:.2f} | {_spct(w_err)} | "
                    f"{'-' if step is None else f'{step * 1e3:.2f}'} | "
                    f"{'-' if not step else _spct(eager_s / step - 1)} |")
        if key in graphs:
            g = st["graph_mode_wall_s"]  # the same nodes replayed as a CUDA graph
            extra.append(f"- {key}, `--mode graph` (CUDA-graph replay): projected {g * 1e3:.2f} ms, measured "
                         f"{graphs[key] * 1e3:.2f} ms ({_spct(g / graphs[key] - 1)})")
    for key, c_s in compiled.items():
        req = _request_from_key(key)
        c = analyze(req.ref, target=target, mode="compiled", phase=req.phase, batch=req.batch, seq=req.seq,
                    kv_len=req.kv_len, dtype=req.dtype).totals["latency_s"]
        extra.append(f"- {key}, `--mode compiled` (torch.compile, inductor): projected {c * 1e3:.2f} ms, measured "
                     f"{c_s * 1e3:.2f} ms ({_spct(c / c_s - 1)})")
    summary = [f"- median |device error| over {len(dev_err)} workloads: {_pct(statistics.median(dev_err))}",
               f"- median per-node error (rows >= 20 us), median over workloads: {_pct(statistics.median(node_err))}; "
               f"over all {len(pooled)} such rows pooled: {_pct(statistics.median(pooled))}",
               f"- median |eager wall error| over {len(wall_err)} workloads: {_pct(statistics.median(wall_err))}"]
    return "\n".join(rows + [""] + summary + extra)


#: Eager walls the host figures are fitted to; the others are held out.
HOST_FIT = ("llama3-8b_prefill_b1_s2048_bfloat16_sdpa", "llama3-8b_decode_b16_kv4096_bfloat16_sdpa",
            "gpt2_prefill_b8_s1024_bfloat16_sdpa", "bert-base_forward_b32_s128_float32_sdpa",
            "resnet50_forward_b32_img_float32_sdpa")


def host_fit(data: str) -> str:
    """Fit host_eager_us, host_eager_library_us and host_eager_view_us (least sum of |eager wall error| over
    HOST_FIT, a grid as the h200 target's source says) with the bundled kernel model and gap."""
    from graphperf.count import count
    from graphperf.execution import simulate
    from graphperf.passes import canonicalize
    from graphperf.pipeline import load_graph
    from graphperf.project import project
    from graphperf.target import load_target

    meas = json.load(open(os.path.join(data, "measurements.json")))
    walls = {w["key"]: w["median_ms"] * 1e-3 for w in meas["workloads"]}
    target = load_target("h200")
    cases = {}
    for key in walls:
        graph, _ = load_graph(_request_from_key(key))
        graph = canonicalize(graph).graph
        counts = count(graph)
        cases[key] = (project(graph, counts, target), [nc.node.op.name for nc in counts])

    def errors(h, lib, v):
        t = target.with_overrides(host_eager_us=h, host_eager_library_us=lib, host_eager_view_us=v)
        return {k: simulate(times, t, "eager", ops).wall_s / walls[k] - 1 for k, (times, ops) in cases.items()}

    best = None
    for h in range(8, 41):
        for lib in range(10, 101, 2):
            for v in (0.5, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12):
                e = errors(h, lib, v)
                loss = sum(abs(e[k]) for k in HOST_FIT if k in e)
                if best is None or loss < best[0]:
                    best = (loss, h, lib, v, e)
    _, h, lib, v, e = best
    lines = [f"Fitted: host_eager_us {h}, host_eager_library_us {lib}, host_eager_view_us {v} (bundled: "
             f"{target.host_eager_us:g}, {target.host_eager_library_us:g}, {target.host_eager_view_us:g}); "
             f"gap launch_overhead_us {target.launch_overhead_us:g} (from the traces, not fitted).", "",
             "| workload | used by the host fit | eager wall error with these figures |", "|---|---|---|"]
    lines += [f"| {k} | {'fit' if k in HOST_FIT else 'held out'} | {_spct(x)} |" for k, x in sorted(e.items())]
    return "\n".join(lines)


def _request_from_key(key: str):
    from graphperf.calibrate.gpu_fit import request_from_trace_name

    return request_from_trace_name(key)


DATA = DEFAULT_DATA

READING = """\
- Before this model (the issue's figures, roofline + 4 us per kernel, bundled h200 of 2026-12-04): GEMM kernels
  16.8%, attention 23.6%, elementwise 19.5%, whole workload vs kernel sum 17.8% (-60% ... +37%), eager wall 57%,
  per node (>= 20 us) 42.8%.
- Sweep rows are do_bench times: CUDA events around one call after an L2 flush. That adds a fixed event latency
  and the write-back of the flush's dirty lines that the kernel's reads evict; both are fitted with the model
  (the "sweep timer" above) and added to sweep rows only. Traces report the kernels' own time (CUPTI), which
  device_s is; the "device_s alone" column shows how far the raw kernel time is from do_bench's.
- Why the timer model is needed, in one example: llama3-8b decode's gate/up projection (m=16, n=14336, k=4096,
  bf16) runs 31.5 us per kernel in the trace (CUPTI) and 41.2 us in the do_bench sweep: the same kernel, timed
  two ways. `device_s` is the kernel time; the shared/hooks/h200_kernels.py figure compares it with do_bench
  time directly (no timer model), so it reads higher (GEMM 23%, attention 16%, elementwise 36% at this commit).
- Held out: about a third of the sweep rows (by a hash of the row: the same split on every machine), the two
  decode traces for the kernel fit, gpt2 decode for the host fit, the CUDA-graph replay (gap measured from the
  traces' kernel-to-kernel gaps, not fitted). compiled_launch_us is fitted to bert-base compiled, the only
  host-bound compiled measurement: its row is in-sample; gpt2 compiled is device-bound and checks device_s.
- What the fitted figures absorb: matrix_efficiency_conv holds cuDNN's NCHW<->NHWC conversion kernels, which the
  trace attributes to the convolution; memory_efficiency_row is one figure for softmax (reads its input more
  than once at 4096 columns: under-projected up to 50%), layer_norm, rms_norm and reductions (over-projected up
  to 40%). Transposed copies (0.6 TB/s) are projected at stream bandwidth (-80%): the graph carries no strides.
"""


def main(argv=None) -> int:
    global DATA
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    DATA = os.path.abspath(a.data)
    sys.path.insert(0, ROOT)
    t0 = time.time()
    kernel_md, _ = kernels(DATA)
    host_md = host_fit(DATA)
    workload_md = workloads(DATA)
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python benchmarks/h200_fidelity.py" + (f" --out {a.out}" if a.out else "")
    text = "\n".join([
        "# graphperf against the H200 measurements (shared/h200)", "",
        f"- Date: {date}; machine: {platform.machine()}, {os.cpu_count()} cores ({platform.platform()}); "
        f"projections are arithmetic, no GPU used; run time {time.time() - t0:.0f} s",
        f"- Command: `{cmd}`",
        f"- Fit: `graphperf calibrate {' '.join(fit_command(DATA))}`", "",
        "## Kernels", "", kernel_md, "", "## Eager host figures", "", host_md, "",
        "## Workloads (bundled h200 target)", "", workload_md, "", "## Reading", "", READING])
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
