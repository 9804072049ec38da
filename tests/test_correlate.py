"""graphperf.correlate: the onnxruntime profile reader, node mapping, error statistics, and
`graphperf profile` / `graphperf correlate` end to end on a small ONNX model."""

from __future__ import annotations

import json
import os
import statistics

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphperf.cli import main
from graphperf.correlate import correlate_onnx, error_stats, onnx_nodes_of, profile_onnx, read_profile
from graphperf.errors import UsageError
from graphperf.target import load_target


def _node(name, ts, dur, op="MatMul"):
    return {"cat": "Node", "pid": 1, "tid": 1, "ph": "X", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op, "provider": "CPUExecutionProvider"}}


def _run(ts, dur):
    return {"cat": "Session", "pid": 1, "tid": 1, "ph": "X", "name": "model_run", "ts": ts, "dur": dur}


def _fixture_events(meta_warmup=None):
    """Three runs at ts 1000, 2000, 3000; node a once per run, node b twice in run 1."""
    a = [100, 10, 20]
    b = [[50], [5, 7], [30]]
    events = [{"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 500, "ph": "X"}]
    for i in range(3):
        t0 = 1000 * (i + 1)
        events.append(_node("a", t0 + 10, a[i]))
        for k, d in enumerate(b[i]):
            events.append(_node("b", t0 + 200 + 50 * k, d, op="Relu"))
        events.append({"cat": "Node", "name": "b_fence_before", "ts": t0 + 199, "dur": 0, "ph": "X"})
        events.append(_run(t0, 900))
    if meta_warmup is not None:
        events.append({"cat": "graphperf", "name": "graphperf_profile", "ph": "M", "ts": 0,
                       "args": {"warmup_runs": meta_warmup}})
    return events, a, b


def test_reader_medians_skip_warmup_and_sum_within_a_run(tmp_path):
    events, a, b = _fixture_events(meta_warmup=1)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(events))
    prof = read_profile(str(path))
    assert (prof.runs, prof.warmup_runs, prof.measured_runs) == (3, 1, 2)
    assert list(prof.nodes) == ["a", "b"]
    assert prof.nodes["a"].median_us == statistics.median(a[1:])
    assert prof.nodes["b"].median_us == statistics.median([sum(r) for r in b[1:]])
    assert prof.nodes["b"].op_name == "Relu" and prof.nodes["a"].provider == "CPUExecutionProvider"
    assert prof.run_median_us == 900
    # no graphperf metadata: the first of several runs is the warm-up; an explicit count wins
    events, a, _ = _fixture_events()
    path.write_text(json.dumps(events))
    assert read_profile(str(path)).warmup_runs == 1
    assert read_profile(str(path), warmup_runs=0).nodes["a"].median_us == statistics.median(a)


@pytest.mark.parametrize("content, what", [(None, "no such profile"), ("{", "not a readable"),
                                           ('{"a": 1}', "expected a JSON list"),
                                           ("[]", "no per-node events")])
def test_reader_errors_name_the_file(tmp_path, content, what):
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=what):
        read_profile(str(path))


def _model(nodes, inputs, outputs, inits=()):
    return helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_fused_node_maps_back_to_the_nodes_it_replaced():
    vi = helper.make_tensor_value_info
    x, r = vi("x", TensorProto.FLOAT, [4, 8]), vi("r", TensorProto.FLOAT, [4, 8])
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 8], [0.0] * 64)
    b = helper.make_tensor("b", TensorProto.FLOAT, [8], [0.0] * 8)
    orig = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
                   helper.make_node("Add", ["y", "b"], ["z"], name="add"),
                   helper.make_node("Relu", ["z"], ["r"], name="relu")], [x], [r], [w, b])
    opt = _model([helper.make_node("Gemm", ["x", "w", "b"], ["z"], name="mm/MatMulAddFusion"),
                  helper.make_node("Relu", ["z"], ["r"], name="relu")], [x], [r], [w, b])
    got = onnx_nodes_of(["mm/MatMulAddFusion", "relu", "ghost"], orig, opt)
    assert sorted(got["mm/MatMulAddFusion"]) == ["add", "mm"]
    assert got["relu"] == ["relu"] and got["ghost"] == []
    # a 3-D MatMul+Add: onnxruntime wraps the Gemm in reshapes with new tensor names; the group maps as one
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [4, 8])
    wrapped = _model([helper.make_node("Reshape", ["x", "s"], ["g_in"], name="gemm_input_reshape"),
                      helper.make_node("Gemm", ["g_in", "w", "b"], ["g_out"], name="mm/MatMulAddFusion"),
                      helper.make_node("Reshape", ["g_out", "s"], ["z"], name="gemm_output_reshape"),
                      helper.make_node("Relu", ["z"], ["r"], name="relu")], [x], [r], [w, b, shape])
    names = ["gemm_input_reshape", "mm/MatMulAddFusion", "gemm_output_reshape"]
    got = onnx_nodes_of(names, orig, wrapped)
    assert all(sorted(got[n]) == ["add", "mm"] for n in names), got


def test_error_stats_formulas():
    pairs = [(10e-6, 20e-6), (30e-6, 30e-6), (90e-6, 30e-6), (1e-6, 4e-6)]
    s = error_stats(pairs, projected_total_s=140e-6, measured_total_s=100e-6)
    ape = [abs(p - m) / m for p, m in pairs]
    assert s["median_ape"] == pytest.approx(float(np.percentile(ape, 50)))
    assert s["p90_ape"] == pytest.approx(float(np.percentile(ape, 90)))
    assert s["median_ape_20us"] == pytest.approx(float(np.percentile(ape[:3], 50)))  # m >= 20 us
    assert s["within_2x"] == 0.5  # 0.5 and 1.0 in [0.5, 2]; 3.0 and 0.25 out
    assert s["time_weighted_error"] == pytest.approx((10 + 0 + 60 + 3) / 84)
    assert s["whole_model_error"] == pytest.approx(0.4)


def _mlp(path, hidden=128, seed=0):
    vi = helper.make_tensor_value_info
    rng = np.random.default_rng(seed)
    w = onnx.numpy_helper.from_array(rng.standard_normal((128, hidden)).astype(np.float32), "w")
    b = onnx.numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "b")
    w2 = onnx.numpy_helper.from_array(rng.standard_normal((hidden, 64)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
             helper.make_node("Add", ["y", "b"], ["z"], name="add"),
             helper.make_node("Relu", ["z"], ["h"], name="relu"),
             helper.make_node("MatMul", ["h", "w2"], ["o"], name="mm2")]
    model = _model(nodes, [vi("x", TensorProto.FLOAT, ["batch", 128])], [vi("o", TensorProto.FLOAT, ["batch", 64])],
                   [w, b, w2])
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("corr")
    model = _mlp(d / "mlp.onnx")
    prof = profile_onnx(model, str(d / "mlp.profile.json"), dims={"batch": 64}, runs=4, warmup=1)
    return model, prof


def test_profile_correlate_end_to_end(profiled):
    model, prof = profiled
    p = read_profile(prof)
    assert (p.runs, p.warmup_runs) == (5, 1) and p.meta["intra_op_threads"] == 1
    c = correlate_onnx(model, prof, load_target("host"), dims={"batch": 64})
    # every projected node with work is in a row; the fused MatMul+Add (Gemm) maps to the folded matmul
    covered = {n for r in c.rows for n in r.nodes}
    assert covered == {"mm", "relu", "mm2"} and not c.unmeasured and not c.unmatched
    gemm = next(r for r in c.rows if r.name == "mm")
    assert gemm.events == ["mm/MatMulAddFusion"]
    assert gemm.measured_s == pytest.approx(p.nodes["mm/MatMulAddFusion"].median_us * 1e-6)
    ape = [abs(r.projected_s - r.measured_s) / r.measured_s for r in c.rows]
    assert c.stats["median_ape"] == pytest.approx(statistics.median(ape))
    total_m = sum(t.median_us for t in p.nodes.values()) * 1e-6
    assert c.stats["whole_model_error"] == pytest.approx((c.stats["projected_total_s"] - total_m) / total_m)


def test_a_gzipped_profile_reads_and_correlates_the_same(profiled):
    import gzip

    model, prof = profiled
    gz = prof + ".gz"  # beside the plain one, so the optimized model it names is found the same way
    with open(prof, "rb") as src, open(gz, "wb") as dst:
        dst.write(gzip.compress(src.read()))
    a, b = read_profile(prof), read_profile(gz)
    assert (b.nodes, b.runs, b.warmup_runs, b.run_median_us, b.meta) == (a.nodes, a.runs, a.warmup_runs,
                                                                          a.run_median_us, a.meta)
    host = load_target("host")
    ca, cb = (correlate_onnx(model, p, host, dims={"batch": 64}) for p in (prof, gz))
    assert [(r.nodes, r.events, r.measured_s, r.projected_s) for r in cb.rows] == \
        [(r.nodes, r.events, r.measured_s, r.projected_s) for r in ca.rows]


def test_a_truncated_gzip_profile_is_exit_2_one_line(profiled, tmp_path, capsys):
    import gzip

    model, prof = profiled
    whole = gzip.compress(open(prof, "rb").read())
    cut = tmp_path / "cut.profile.json.gz"
    cut.write_bytes(whole[:-20])
    assert main(["correlate", model, "--profile", str(cut), "--target", "host", "--dim", "batch=64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "truncated or corrupt" in err


def test_onnxruntime_stats_compare_the_device_time_and_the_model_run_wall(profiled):
    model, prof = profiled
    p = read_profile(prof)
    host = load_target("host")
    c = correlate_onnx(model, prof, host, dims={"batch": 64})
    s = c.stats
    measured_total_s = sum(t.median_us for t in p.nodes.values()) * 1e-6
    device_s = sum(r.device_s for r in c.records.values() if r.device_s is not None)
    assert s["mode"] == "graph" and s["per_row_projection"] == "device_s + max(host_s, launch gap)"
    # a CPU profile's op times hold each op's dispatch: they are no kernel time to hold device_s against
    assert s["projected_device_s"] == pytest.approx(device_s) and s["measured_kernel_s"] is None
    assert s["device_error"] is None and measured_total_s > 0
    assert s["measured_wall_s"] == pytest.approx(p.run_median_us * 1e-6) == s["run_median_s"]
    assert s["wall_error"] == pytest.approx((s["projected_wall_s"] - s["measured_wall_s"]) / s["measured_wall_s"])
    # a CPU op's measured time holds its dispatch: each row projects device + the per-kernel gap (graph mode: no host time)
    for r in c.rows:
        assert r.projected_s == pytest.approx(sum(c.records[n].device_s + host.launch_overhead_us * 1e-6
                                                  for n in r.nodes))


def test_unmatched_events_are_listed_with_their_time(profiled, tmp_path):
    model, prof = profiled
    events = json.load(open(prof))
    run = [e for e in events if e.get("name") == "model_run"][-1]
    events.append(_node("ghost", run["ts"] + 1, 123, op="Mystery"))
    path = tmp_path / "ghost.json"
    path.write_text(json.dumps(events))  # no optimized model beside it: names map to the original model
    c = correlate_onnx(model, str(path), load_target("host"), dims={"batch": 64})
    ghost = [u for u in c.unmatched if u["name"] == "ghost"]
    assert ghost and ghost[0]["measured_s"] == pytest.approx(123e-6) and ghost[0]["op"] == "Mystery"
    assert c.stats["unmatched_s"] >= 123e-6


def test_cli_profile_and_correlate(profiled, tmp_path, capsys):
    model, _ = profiled
    out = tmp_path / "cli.json"
    assert main(["profile", model, "--dim", "batch=64", "-o", str(out), "--runs", "2", "--warmup", "1"]) == 0
    trace = tmp_path / "trace.json"
    capsys.readouterr()
    code = main(["correlate", model, "--profile", str(out), "--target", "host", "--dim", "batch=64",
                 "--format", "json", "--trace", str(trace)])
    got = json.loads(capsys.readouterr().out)
    assert code == 0 and got["schema"] == "graphperf.correlate/1" and got["stats"]["rows"] == 3
    tracks = {e["pid"] for e in json.load(open(trace))["traceEvents"] if e["ph"] == "X"}
    assert tracks == {1, 2}
    assert main(["correlate", model, "--profile", str(out), "--target", "host", "--dim", "batch=64"]) == 0
    assert "whole model" in capsys.readouterr().out


def test_cli_errors_are_one_line_exit_2(profiled, tmp_path, capsys, monkeypatch):
    model, prof = profiled
    monkeypatch.chdir(tmp_path)  # `graphperf profile` without -o writes here
    other = tmp_path / "other.onnx"
    vi = helper.make_tensor_value_info
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"], name="r0")], [vi("x", TensorProto.FLOAT, [4])],
                     [vi("y", TensorProto.FLOAT, [4])]), str(other))
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    cases = [(["correlate", model, "--profile", str(tmp_path / "missing.json"), "--target", "host",
               "--dim", "batch=64"], "no such profile"),
             (["correlate", model, "--profile", str(bad), "--target", "host", "--dim", "batch=64"], "not a readable"),
             (["correlate", str(other), "--profile", prof, "--target", "host"], "another model"),
             (["correlate", "gpt2", "--profile", prof, "--target", "host"], ".onnx"),
             (["profile", str(tmp_path / "nope.onnx")], "no such file"),
             (["profile", model], "--dim")]
    for argv, what in cases:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert what in err and err.count("\n") == 1, err
    assert not list(tmp_path.glob("*.profile*")), "a failed profile leaves no files"


def test_public_names_are_pinned():
    import graphperf.correlate as corr

    assert set(corr.__all__) == {"profile_onnx", "read_profile", "onnx_nodes_of", "correlate_onnx", "error_stats",
                                 "Correlation", "Row", "Profile", "NodeTiming"}
    assert all(getattr(corr, n) is not None for n in corr.__all__)


def test_onnxruntime_layout_ops_are_projected_as_the_copies_it_runs(tmp_path):
    # x -> Transpose -> Relu: onnxruntime runs the Transpose as a copy kernel; `analyze` counts it as a
    # view (free), `correlate` as a copy: the tensor read once and written once, plus a launch.
    from graphperf.pipeline import ModelRequest, analyze_graph, load_graph

    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[1, 0]),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "t", [vi("x", TensorProto.FLOAT, [256, 512])],
                              [vi("y", TensorProto.FLOAT, [512, 256])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = str(tmp_path / "t.onnx")
    onnx.save(model, path)
    prof = profile_onnx(path, str(tmp_path / "t.profile.json"), runs=3, warmup=1)
    host = load_target("host")
    c = correlate_onnx(path, prof, host)
    row = next(r for r in c.rows if r.nodes == ["tr"])
    copy_bytes = 2 * 256 * 512 * 4
    expected = copy_bytes / (host.hbm_bytes_per_s * host.memory_efficiency) + host.launch_overhead_us * 1e-6
    assert row.projected_s == pytest.approx(expected)
    g, info = load_graph(ModelRequest(path))
    assert next(n for n in analyze_graph(g, host, info).nodes if n.name == "tr").bound == "free"


# -- a profile of another model or other dims is refused (issue 17) ----------------------------------


def test_a_profile_of_another_model_is_refused_saying_how_the_models_were_compared(profiled, tmp_path, capsys):
    import shutil

    model, prof = profiled
    wide = _mlp(tmp_path / "wide.onnx", hidden=512)  # same node names, four times the work
    (tmp_path / "same").mkdir()
    reseeded = _mlp(tmp_path / "same" / "mlp.onnx", seed=1)  # same name and size, other weights
    for other in (wide, reseeded):
        code = main(["correlate", other, "--profile", prof, "--target", "host", "--dim", "batch=64"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert "another model" in err and "compared by sha256" in err and f"graphperf profile {other}" in err
    meta = read_profile(prof).meta
    assert meta["model_bytes"] == os.path.getsize(model) and len(meta["model_sha256"]) == 64
    # the same bytes under another name are the same model
    copy = shutil.copy(model, tmp_path / "renamed.onnx")
    assert correlate_onnx(str(copy), prof, load_target("host")).rows


@pytest.mark.parametrize("recorded, how", [({"model_bytes": 1}, "compared by file name and size"),
                                           ({}, "compared by file name")])
def test_profiles_that_record_less_are_compared_by_what_they_record(profiled, recorded, how):
    from graphperf.correlate.provenance import onnx_profile_dims

    model, _ = profiled
    meta = {"model": "/elsewhere/mlp.onnx", "dims": {"batch": 64}, **recorded}
    if recorded:  # right name, wrong size
        with pytest.raises(UsageError, match=how):
            onnx_profile_dims(meta, "p.json", model, None)
    else:  # right name: accepted; wrong name: refused
        assert onnx_profile_dims(meta, "p.json", model, None) == {"batch": 64}
        with pytest.raises(UsageError, match=how):
            onnx_profile_dims({**meta, "model": "/elsewhere/other.onnx"}, "p.json", model, None)
    assert onnx_profile_dims({}, "p.json", model, {"batch": 2}) == {"batch": 2}  # no metadata: nothing to check


def test_the_profile_dims_are_the_default_and_a_differing_dim_is_refused(profiled, capsys):
    model, prof = profiled
    host = load_target("host")
    assert main(["correlate", model, "--profile", prof, "--target", "host", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["profile"]["dims"] == {"batch": 64}  # the recorded dims, said in the result
    pinned = correlate_onnx(model, prof, host, dims={"batch": 64})
    assert [r["projected_s"] for r in got["rows"]] == pytest.approx([r.projected_s for r in pinned.rows])
    assert main(["correlate", model, "--profile", prof, "--target", "host", "--dim", "batch=4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "recorded at batch=64, projected at --dim batch=4" in err
    assert "drop --dim" in err
    assert main(["correlate", model, "--profile", prof, "--target", "host"]) == 0
    assert "dims batch=64" in " ".join(capsys.readouterr().out.split())  # the header wraps
