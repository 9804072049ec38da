"""`graphperf audit` (issue 18): every finding's gain is the what-if `graphperf whatif` runs for the same rewrite;
each check has a graph that triggers it and one that does not; JSON, HTML and --fail-on."""

import json
import math

import onnx
import pytest
import torch
from onnx import TensorProto, helper

import graphperf
from graphperf.audit import CHECKS, SEVERITIES, audit
from graphperf.cli import main

VOCAB = 50257  # GPT-2's vocabulary: 50257 * 4 bytes is not a multiple of 16


@pytest.fixture(scope="module")
def gpt2_onnx(tmp_path_factory):
    """An HF GPT-2 (two tiny layers, the real vocabulary) through torch.onnx.export(dynamo=True)."""
    import transformers as T

    torch.manual_seed(0)
    config = T.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=VOCAB, use_cache=False)
    path = tmp_path_factory.mktemp("gpt2") / "gpt2.onnx"
    torch.onnx.export(T.GPT2LMHeadModel(config).eval(), (), str(path), dynamo=True, opset_version=18,
                      kwargs={"input_ids": torch.randint(0, VOCAB, (1, 32))})
    return str(path)


@pytest.fixture(scope="module")
def gpt2_audit(gpt2_onnx):
    return audit(gpt2_onnx, "h200")


def _whatif_json(tmp_path, model, *flags):
    out = tmp_path / "w.json"
    assert main(["whatif", model, "--target", "h200", *flags, "-o", str(out)]) == 0
    return json.loads(out.read_text())


def _finding(result, check):
    found = [f for f in result.findings if f.check == check]
    assert len(found) == 1, [f.check for f in result.findings]
    return found[0]


@pytest.mark.parametrize("check,flags", [("misaligned_gemm", ("--pad", f"{VOCAB}=64")),
                                         ("unfused_attention", ("--fuse", "attention"))])
def test_gpt2_gains_equal_what_whatif_gives(tmp_path, gpt2_onnx, gpt2_audit, check, flags):
    finding = _finding(gpt2_audit, check)
    doc = _whatif_json(tmp_path, gpt2_onnx, *flags)
    before, after = doc["before"]["totals"]["latency_s"], doc["after"]["totals"]["latency_s"]
    assert finding.before_s == pytest.approx(before, rel=1e-12) and finding.after_s == pytest.approx(after, rel=1e-12)
    assert finding.gain_s > 0 and {"--" + k: v for k, v in finding.whatif.items()} == dict([flags])


def test_the_lm_head_is_the_misaligned_node(gpt2_audit):
    f = _finding(gpt2_audit, "misaligned_gemm")
    assert f"{VOCAB}" in f.title and len(f.nodes) == 1 and "50304" in f.recommendation


def test_eager_decode_at_batch_1_is_launch_bound():
    result = audit("llama3-8b", "h200", phase="decode", batch=1, kv_len=1024, mode="eager", checks=["launch_bound"])
    f = _finding(result, "launch_bound")
    replay = graphperf.analyze("llama3-8b", phase="decode", batch=1, kv_len=1024, target="h200", mode="graph")
    assert f.before_s == pytest.approx(result.latency_s) and f.after_s == pytest.approx(replay.totals["latency_s"])
    assert f.whatif == {"mode": "graph"} and f.severity == "high"


def test_llama3_70b_on_one_h100_does_not_fit():
    result = audit("llama3-70b", "h100", phase="decode", batch=1, kv_len=1024, checks=["does_not_fit"])
    f = _finding(result, "does_not_fit")
    need, capacity = f.extra["memory_needed_bytes"], f.extra["memory_capacity_bytes"]
    assert f.severity == "critical" and f.gain_s is None and capacity == 80e9
    assert f.extra["devices_needed_at_least"] == math.ceil(need / capacity) >= 2


def _findings(check, model, target="h200", **kw):
    return [f.check for f in audit(model, target, checks=[check], **kw).findings]


@pytest.mark.parametrize("check,trigger,quiet", [
    ("misaligned_gemm", None, dict(model="gpt2", config="tiny")),
    ("unfused_attention", dict(model="gpt2", config="tiny", attention="eager"), dict(model="gpt2", config="tiny")),
    ("unfused_norm", dict(model="gpt2", config="tiny"), dict(model="resnet50", config="tiny")),
    ("fp32_matrix_work", dict(model="gpt2", config="tiny", dtype="float32"),
     dict(model="gpt2", config="tiny", dtype="bfloat16")),
    ("launch_bound", None, dict(model="gpt2", phase="prefill", batch=8, seq=1024, dtype="bfloat16")),
    ("does_not_fit", None, dict(model="llama3-8b", config="tiny")),
    ("unknown_ops", None, dict(model="gpt2", config="tiny")),
])
def test_each_check_is_quiet_on_a_graph_without_its_problem(check, trigger, quiet):
    assert _findings(check, **quiet) == []
    if trigger is not None:
        assert _findings(check, **trigger) == [check]


def test_unknown_ops_and_norm_chains_trigger_on_their_graphs(tmp_path, gpt2_audit):
    assert _finding(gpt2_audit, "unfused_norm").gain_s > 0  # the exporter's decomposed norms
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 16])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Frob", ["r"], ["y"],
                                                                                          domain="com.acme")],
                              "g", [x], [y], value_info=[helper.make_tensor_value_info("r", TensorProto.FLOAT, [8, 16])])
    path = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)]),
              str(path))
    f = _finding(audit(str(path), "h200", checks=["unknown_ops"]), "unknown_ops")
    assert f.severity == "high" and f.gain_s is None and "lower bound" in f.why


def test_json_html_table_and_fail_on(tmp_path, gpt2_onnx, capsys):
    out = tmp_path / "a.json"
    assert main(["audit", gpt2_onnx, "--target", "h200", "-o", str(out)]) == 0  # findings are not a failure
    doc = json.loads(out.read_text())
    assert doc["schema"] == "graphperf.audit/1" and doc["checks_run"] == list(CHECKS)
    ranks = [(SEVERITIES.index(f["severity"]), -(f["gain_s"] or 0)) for f in doc["findings"]]
    assert ranks == sorted(ranks) and [f["id"] for f in doc["findings"]] == [f"F{i + 1}" for i in range(len(ranks))]
    page = tmp_path / "a.html"
    assert main(["audit", gpt2_onnx, "--target", "h200", "-o", str(page)]) == 0
    assert page.read_text().count('<g class="pair">') == sum(f["gain_s"] is not None for f in doc["findings"])
    capsys.readouterr()
    assert main(["audit", gpt2_onnx, "--target", "h200", "--fail-on", "high"]) == 1
    assert "finding(s) at or above --fail-on high" in capsys.readouterr().err
    assert main(["audit", "gpt2", "--config", "tiny", "--check", "nope"]) == 2
