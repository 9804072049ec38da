"""graphperf.correlate.kineto: reading torch.profiler Chrome traces (a real CPU trace recorded here,
and a hand-built GPU trace with kernels), format detection, and matching aten ops to a torch.export
capture of the same module."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from graphperf.correlate.kineto import read_kineto
from graphperf.correlate.match import correlate, correlate_kineto
from graphperf.correlate.reader import profile_format, read_profile
from graphperf.errors import UsageError
from graphperf.pipeline import ModelRequest
from graphperf.target import load_target

STEPS = 4


class _Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 16)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """The module saved with torch.export and a torch.profiler trace of STEPS eager calls, marked as
    steps by a profiler schedule (one warm-up step, kept out of the trace by the schedule)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    d = tmp_path_factory.mktemp("kineto")
    torch.manual_seed(0)
    m, x = _Mlp().eval(), torch.randn(8, 32)
    pt2 = d / "mlp.pt2"
    torch.export.save(torch.export.export(m, (x,), strict=False), str(pt2))
    trace = d / "mlp.trace.json"
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], record_shapes=True,
                                  schedule=schedule(wait=0, warmup=1, active=STEPS),
                                  on_trace_ready=lambda p: p.export_chrome_trace(str(trace))) as prof:
        for _ in range(STEPS + 1):
            m(x)
            prof.step()
    return str(pt2), str(trace)


def _top_level_events(path):
    """Independent oracle: cpu_op events not contained in another cpu_op, in time order."""
    ops = [e for e in json.load(open(path))["traceEvents"] if e.get("cat") == "cpu_op" and e.get("ph") == "X"]
    return [e for e in ops if not any(o is not e and o["ts"] <= e["ts"] and e["ts"] + e["dur"] <= o["ts"] + o["dur"]
                                      and o["tid"] == e["tid"] for o in ops)]


def test_reads_top_level_ops_with_shapes_and_step_medians(traced):
    _, trace = traced
    tr = read_kineto(trace)
    assert (tr.runs, tr.warmup_runs, tr.device, tr.steps_from) == (STEPS, 0, "cpu", "ProfilerStep")
    assert [op.name for op in tr.ops] == ["aten::linear", "aten::relu", "aten::linear"]
    assert tr.ops[0].tensor_shapes == [(8, 32), (64, 32), (64,)]
    top = sorted(_top_level_events(trace), key=lambda e: e["ts"])
    assert len(top) == 3 * STEPS
    for i, op in enumerate(tr.ops):
        assert op.median_us == pytest.approx(statistics.median(e["dur"] for e in top[i::3]))
    assert profile_format(trace) == "kineto"


def test_correlates_with_the_exported_module_and_lists_unmatched_ops(traced, tmp_path):
    pt2, trace = traced
    tr = read_kineto(trace)
    c = correlate_kineto(ModelRequest(pt2), trace, load_target("host"))
    assert [r.events for r in c.rows] == [["aten::linear#0"], ["aten::relu#1"], ["aten::linear#2"]]
    assert not c.unmatched and not c.unmeasured
    assert [r.measured_s for r in c.rows] == pytest.approx([op.median_us * 1e-6 for op in tr.ops])
    assert c.profile["format"] == "kineto"
    # an op the graph does not have, inserted in every step, is listed with its time, never dropped
    data = json.load(open(trace))
    top = sorted(_top_level_events(trace), key=lambda e: e["ts"])
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in data["traceEvents"]
                   if str(e.get("name", "")).startswith("ProfilerStep#") and e.get("ph") == "X")
    durs = []
    for k, (_, step_end) in zip(range(2, len(top), 3), spans):  # after each step's last op, inside its step
        end = top[k]["ts"] + top[k]["dur"]
        room = step_end - end
        assert room > 0
        durs.append(room / 2)
        data["traceEvents"].append({**top[k], "name": "aten::mystery", "ts": end + room / 4, "dur": room / 2,
                                    "args": {"Input Dims": [[3, 3]]}})
    ghost = tmp_path / "ghost.json"
    ghost.write_text(json.dumps(data))
    c2 = correlate(pt2, str(ghost), load_target("host"))  # dispatches on the format
    assert [u["op"] for u in c2.unmatched] == ["aten::mystery"]
    assert c2.unmatched[0]["measured_s"] == pytest.approx(statistics.median(durs) * 1e-6)
    assert "no node of this op" in c2.unmatched[0]["reason"]
    assert len(c2.rows) == 3


def test_shape_mismatch_is_unmatched_with_the_reason(traced, tmp_path):
    pt2, trace = traced
    data = json.load(open(trace))
    for e in data["traceEvents"]:
        if e.get("name") == "aten::relu":
            e["args"]["Input Dims"] = [[4, 4]]
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(data))
    c = correlate_kineto(ModelRequest(pt2), str(path), load_target("host"))
    assert [u["op"] for u in c.unmatched] == ["aten::relu"] and "input shapes" in c.unmatched[0]["reason"]


def _gpu_trace():
    """Two steps; per step: aten::linear launching 2 kernels (one by External id, one only by correlation
    through its cudaLaunchKernel), aten::relu launching 1; plus one kernel with no link at all."""
    ev = []
    for step in range(2):
        t = 1000.0 * step
        ev.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{step}", "ts": t, "dur": 900,
                   "pid": 1, "tid": 1})
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::linear", "ts": t + 10, "dur": 100, "pid": 1, "tid": 1,
                   "args": {"External id": 10 + step, "Input Dims": [[8, 32], [64, 32], [64]]}})
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "ts": t + 20, "dur": 50, "pid": 1, "tid": 1,
                   "args": {"External id": 20 + step}})
        ev.append({"ph": "X", "cuda_runtime": 1, "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": t + 30,
                   "dur": 5, "pid": 1, "tid": 1, "args": {"correlation": 100 + step}})
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::relu", "ts": t + 200, "dur": 40, "pid": 1, "tid": 1,
                   "args": {"External id": 30 + step, "Input Dims": [[8, 64]]}})
        ev.append({"ph": "X", "cat": "kernel", "name": "gemm", "ts": t + 300, "dur": 11.0 + step, "pid": 0, "tid": 7,
                   "args": {"External id": 20 + step, "correlation": 99}})
        ev.append({"ph": "X", "cat": "kernel", "name": "bias", "ts": t + 320, "dur": 3.0, "pid": 0, "tid": 7,
                   "args": {"correlation": 100 + step}})
        ev.append({"ph": "X", "cat": "kernel", "name": "relu_k", "ts": t + 330, "dur": 2.0, "pid": 0, "tid": 7,
                   "args": {"External id": 30 + step}})
        ev.append({"ph": "X", "cat": "kernel", "name": "stray", "ts": t + 340, "dur": 4.0, "pid": 0, "tid": 7,
                   "args": {}})
    return {"traceEvents": ev}


def test_gpu_kernels_are_attributed_to_their_launching_op(tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(_gpu_trace()))
    tr = read_kineto(str(path), warmup_runs=0)
    assert (tr.runs, tr.device, tr.steps_from) == (2, "cuda", "ProfilerStep")
    linear, relu = tr.ops
    assert linear.durations_us == [11.0 + 3.0, 12.0 + 3.0] and relu.durations_us == [2.0, 2.0]
    assert sorted(linear.kernels) == ["bias", "gemm"]
    assert tr.orphan_kernels == [{"name": "stray", "dur_us": 4.0}] * 2


def test_format_detection_and_errors(traced, tmp_path):
    _, trace = traced
    ort = tmp_path / "ort.json"
    ort.write_text(json.dumps([{"cat": "Node", "name": "a_kernel_time", "ts": 1, "dur": 2, "ph": "X"}]))
    assert profile_format(str(ort)) == "onnxruntime"
    with pytest.raises(UsageError, match="torch.profiler trace"):
        read_profile(trace)
    with pytest.raises(UsageError, match="not with model.onnx"):
        correlate_kineto(ModelRequest("model.onnx"), trace, load_target("host"))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"traceEvents": [{"ph": "M", "name": "process_name"}]}))
    with pytest.raises(UsageError, match="neither"):
        profile_format(str(empty))
    with pytest.raises(UsageError, match="no cpu_op events"):
        read_kineto(str(empty))


def test_tensor_list_inputs_are_flattened_for_matching():
    from graphperf.correlate.kineto import KinetoOp

    cat = KinetoOp("aten::cat", [[[2, 4, 8], [2, 4, 8]], []], 0, [1.0])
    assert cat.tensor_shapes == [(2, 4, 8), (2, 4, 8)]
    linear = KinetoOp("aten::linear", [[8, 32], [64, 32], [64], []], 0, [1.0])
    assert linear.tensor_shapes == [(8, 32), (64, 32), (64,)]


def test_cli_correlates_a_trace_with_the_pt2_it_profiled(traced, tmp_path, capsys):
    from graphperf.cli import main

    pt2, trace = traced
    out = tmp_path / "c.json"
    assert main(["correlate", pt2, "--profile", trace, "--target", "host", "--format", "json", "-o", str(out),
                 "--trace", str(tmp_path / "t.json")]) == 0
    doc = json.loads(out.read_text())
    assert doc["profile"]["format"] == "kineto" and len(doc["rows"]) == 3
    names = [e["args"]["name"] for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"]
             if e.get("ph") == "M"]
    assert names[0] == "measured (torch.profiler)"
    # a torch.profiler trace with an .onnx file is a one-line error naming what to pass instead
    assert main(["correlate", "model.onnx", "--profile", trace, "--target", "host"]) == 2
    assert "torch model it profiled" in capsys.readouterr().err


def test_one_call_of_repeated_layers_is_one_step_not_several(tmp_path):
    # three identical Linear+ReLU blocks called once: the repeating op names must not be taken for steps
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    m = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU()) for _ in range(3)]).eval()
    x = torch.randn(4, 16)
    pt2 = tmp_path / "seq.pt2"
    torch.export.save(torch.export.export(m, (x,), strict=False), str(pt2))
    with torch.no_grad():
        m(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            m(x)
    trace = tmp_path / "seq.json"
    prof.export_chrome_trace(str(trace))
    tr = read_kineto(str(trace))
    assert (tr.runs, tr.warmup_runs, tr.steps_from) == (1, 0, "single") and len(tr.ops) == 6
    c = correlate_kineto(ModelRequest(str(pt2)), str(trace), load_target("host"))
    assert len(c.rows) == 6 and not c.unmeasured and not c.unmatched


def test_a_trace_without_shapes_is_refused(traced, tmp_path):
    pt2, trace = traced
    data = json.load(open(trace))
    for e in data["traceEvents"]:
        if e.get("cat") == "cpu_op":
            (e.get("args") or {}).pop("Input Dims", None)
    path = tmp_path / "noshapes.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="record_shapes=True"):
        correlate_kineto(ModelRequest(pt2), str(path), load_target("host"))


def test_gpu_ops_without_kernels_are_listed_as_unmeasured(tmp_path):
    # the relu of the hand-built GPU trace loses its kernel: its node must appear in `unmeasured`
    torch.manual_seed(0)
    m, x = _Mlp().eval(), torch.randn(8, 32)
    pt2 = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(m, (x,), strict=False), str(pt2))
    ev = [e for e in _gpu_trace()["traceEvents"] if e.get("name") != "relu_k"]
    ev = [{**e, "args": {**e["args"], "Input Dims": [[8, 32], [64, 32], [64]]}} if e.get("name") == "aten::linear"
          else e for e in ev]
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    c = correlate_kineto(ModelRequest(str(pt2)), str(path), load_target("h100"))
    relu = [u for u in c.unmeasured if u["op"] == "relu"]
    assert relu and "no measured time" in relu[0]["reason"]


# -- gzip, whole-step statistics, execution modes ------------------------------------------------------


def _gzip_to(src: str, dst) -> str:
    import gzip

    dst.write_bytes(gzip.compress(open(src, "rb").read()))
    return str(dst)


def test_a_gzipped_trace_reads_the_same_as_the_plain_one(traced, tmp_path):
    _, trace = traced
    plain = read_kineto(trace)
    # recognised by its magic bytes: a .json.gz as torch.profiler's tensorboard handler writes, or any name
    for name in ("mlp.pt.trace.json.gz", "misnamed.json"):
        gz = read_kineto(_gzip_to(trace, tmp_path / name))
        assert [(o.name, o.input_dims, o.durations_us) for o in gz.ops] == \
            [(o.name, o.input_dims, o.durations_us) for o in plain.ops]
        assert (gz.runs, gz.device, gz.step_wall_us) == (plain.runs, plain.device, plain.step_wall_us)
        assert profile_format(gz.path) == "kineto"


def test_a_truncated_gzip_is_a_one_line_usage_error(traced, tmp_path, capsys):
    from graphperf.cli import main

    pt2, trace = traced
    whole = open(_gzip_to(trace, tmp_path / "t.json.gz"), "rb").read()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UsageError, match="truncated or corrupt"):
        read_kineto(str(cut))
    assert main(["correlate", pt2, "--profile", str(cut), "--target", "host"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "cut.json.gz" in err


def test_steps_carry_their_profiler_span_and_kernel_time(tmp_path):
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(_gpu_trace()))
    tr = read_kineto(str(path))
    assert tr.step_wall_us == [900.0, 900.0]  # the ProfilerStep spans
    assert tr.step_kernel_us == [11.0 + 3.0 + 2.0, 12.0 + 3.0 + 2.0]  # attributed kernels; the orphan is not
    assert tr.step_wall_s == pytest.approx(900e-6) and tr.step_kernel_s == pytest.approx(16.5e-6)


@pytest.fixture
def gpu_case(tmp_path):
    torch.manual_seed(0)
    m, x = _Mlp().eval(), torch.randn(8, 32)
    pt2 = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(m, (x,), strict=False), str(pt2))
    ev = [{**e, "args": {**e["args"], "Input Dims": [[8, 32], [64, 32], [64]]}} if e.get("name") == "aten::linear"
          else e for e in _gpu_trace()["traceEvents"]]
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps({"traceEvents": ev}))
    return str(pt2), str(path)


@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_gpu_correlation_compares_device_time_with_kernels_and_the_wall_with_the_step(gpu_case, mode):
    pt2, path = gpu_case
    h100 = load_target("h100")
    c = correlate_kineto(ModelRequest(pt2), path, h100, mode=mode)
    s = c.stats
    report_device_s = sum(r.device_s for r in c.records.values() if r.device_s is not None)
    assert s["mode"] == mode and s["per_row_projection"] == "device_s"
    assert s["projected_device_s"] == pytest.approx(report_device_s)
    assert s["measured_kernel_s"] == pytest.approx(16.5e-6)
    assert s["device_error"] == pytest.approx((report_device_s - 16.5e-6) / 16.5e-6)
    assert s["measured_wall_s"] == pytest.approx(900e-6) and "ProfilerStep" in s["wall_measured_as"]
    assert s["wall_error"] == pytest.approx((s["projected_wall_s"] - 900e-6) / 900e-6)
    wall = sum(r.latency_s for r in c.records.values() if r.latency_s is not None)
    assert s["projected_wall_s"] == pytest.approx(wall)
    for row in c.rows:  # per row: the kernels' time against the nodes' device time, not their wall share
        assert row.projected_s == pytest.approx(sum(c.records[n].device_s for n in row.nodes))


def test_compiled_mode_rows_are_the_fused_kernels(gpu_case):
    pt2, path = gpu_case
    c = correlate_kineto(ModelRequest(pt2), path, load_target("h100"), mode="compiled")
    assert c.stats["mode"] == "compiled" and [u["op"] for u in c.unmatched] == ["kernel"]  # the orphan only
    # the trace's linear and relu are one row against the one kernel the epilogue rule fuses them into
    (row,) = c.rows
    assert row.op == "fused" and row.events == ["aten::linear#0", "aten::relu#1"]
    assert row.measured_s == pytest.approx((14.5 + 2.0) * 1e-6)  # the median linear kernels + the relu kernel
    assert row.projected_s == pytest.approx(c.records[row.name].device_s)


def test_cpu_trace_rows_include_the_host_issue_time_and_cli_takes_the_mode(traced, tmp_path, capsys):
    from graphperf.cli import main

    pt2, trace = traced
    out = tmp_path / "c.json"
    host = load_target("host")
    assert main(["correlate", pt2, "--profile", trace, "--target", "host", "--mode", "eager", "--format", "json",
                 "-o", str(out)]) == 0
    assert f"wrote {out} (json)" in capsys.readouterr().err  # a report written to a file is announced on stderr
    doc = json.loads(out.read_text())
    s = doc["stats"]
    assert s["mode"] == "eager" and s["per_row_projection"] == "device_s + max(host_s, launch gap)"
    eager_host_s = (host.host_eager_us if host.host_eager_us is not None else host.launch_overhead_us) * 1e-6
    dispatch_s = max(eager_host_s, host.launch_overhead_us * 1e-6)  # every matched node here launches a kernel
    c = correlate_kineto(ModelRequest(pt2), trace, host, mode="eager")
    for row in c.rows:
        assert row.projected_s == pytest.approx(sum(c.records[n].device_s + dispatch_s for n in row.nodes))
    for key in ("device_error", "wall_error", "measured_wall_s", "projected_wall_s", "measured_kernel_s",
                "projected_device_s"):
        assert key in s
    assert s["measured_wall_s"] == pytest.approx(read_kineto(trace).step_wall_s)
    assert main(["correlate", pt2, "--profile", trace, "--target", "host", "--mode", "async"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


# -- a trace of other shapes, another dtype or another model is refused (issue 17) --------------------


@pytest.fixture(scope="module")
def tiny_decode(tmp_path_factory):
    """A CPU torch.profiler trace of the tiny llama3-8b decode step at batch 2, kv_len 16, float32."""
    from torch.profiler import ProfilerActivity, profile

    from graphperf import models

    wl = models.build("llama3-8b", config="tiny", phase="decode", batch=2, kv_len=16, dtype="float32", device="cpu")
    with torch.no_grad():
        wl.module(*wl.args)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            wl.module(*wl.args)
    path = tmp_path_factory.mktemp("tiny") / "llama_decode.json"
    prof.export_chrome_trace(str(path))
    return str(path)


def _tiny(**shape):
    return ModelRequest("llama3-8b", config="tiny", phase="decode", **{"batch": 2, "kv_len": 16, "dtype": "float32",
                                                                       **shape})


def test_tensor_dtypes_are_read_from_the_recorded_input_types(tiny_decode):
    from graphperf.correlate.kineto import KinetoOp

    op = KinetoOp("aten::pow", [[2, 1, 64], [], [4]], 0, [1.0], [], ["c10::BFloat16", "Scalar", "long int"])
    assert op.tensor_dtypes == ["bfloat16", "int64"]
    assert "float32" in read_kineto(tiny_decode).ops[1].tensor_dtypes


def test_the_trace_of_the_projected_workload_correlates(tiny_decode):
    c = correlate_kineto(_tiny(), tiny_decode, load_target("host"))
    assert c.rows and not c.unmatched


@pytest.mark.parametrize("shape, differs, flag", [({"kv_len": 32}, "aten::scaled_dot_product_attention", "--kv-len 16"),
                                                   ({"batch": 4}, "aten::embedding#0", "--batch 2")])
def test_a_trace_at_other_shapes_is_refused_with_the_flags_that_match(tiny_decode, capsys, shape, differs, flag):
    from graphperf.cli import main

    with pytest.raises(UsageError) as e:
        correlate_kineto(_tiny(**shape), tiny_decode, load_target("host"))
    msg = str(e.value)
    assert "match no graph node" in msg and differs in msg and msg.endswith(f"project it with {flag}")
    argv = ["correlate", "llama3-8b", "--config", "tiny", "--phase", "decode", "--dtype", "float32", "--profile",
            tiny_decode, "--target", "host", *(f"--{k.replace('_', '-')}={v}" for k, v in shape.items())]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and flag in err


def test_a_trace_of_another_dtype_is_refused(tiny_decode):
    with pytest.raises(UsageError) as e:
        correlate_kineto(_tiny(dtype="bfloat16"), tiny_decode, load_target("host"))
    msg = str(e.value)
    assert "the trace runs float32, the projection bfloat16" in msg and "aten::embedding#0 traced float32" in msg
    assert msg.endswith("project it with --dtype float32")


def test_a_trace_that_mostly_matches_no_node_is_refused(traced, tmp_path):
    # the two linears traced at another batch: only the relu matches, under half of the ops and the time
    pt2, trace = traced
    data = json.load(open(trace))
    for e in data["traceEvents"]:
        if e.get("name") == "aten::linear" and e.get("cat") == "cpu_op":
            e["args"]["Input Dims"] = [[4, d[1]] if len(d) == 2 and d[0] == 8 else d for d in e["args"]["Input Dims"]]
    path = tmp_path / "batch4.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=r"2 of 3 timed ops .* match no graph node \(aten::linear#0 traced "
                                         r"\(4x32, 64x32, 64\), graph \(8x32, 64x32, 64\).*another model or other"):
        correlate_kineto(ModelRequest(pt2), str(path), load_target("host"))
