"""The Python API: analyze/capture on every model form, Report helpers, user cost rules and passes,
and the README's Python examples (run as written)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

import graphperf
from graphperf import AnalysisError, Cost, OpId, UsageError
from graphperf.cli import main
from graphperf.report.csv_report import COLUMNS
from graphperf.report.model import SCHEMA

README = Path(__file__).resolve().parents[1] / "README.md"
B, K, H, N = 4, 16, 32, 8  # MLP: x [B, K] -> Linear(K, H) -> ReLU -> Linear(H, N)
MATRIX = 2 * B * K * H + 2 * B * H * N


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(K, H), torch.nn.ReLU(), torch.nn.Linear(H, N))


@torch.library.custom_op("graphperf_test::scale_shift", mutates_args=())
def scale_shift(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


@scale_shift.register_fake
def _(x):
    return torch.empty_like(x)


class WithCustomOp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(K, H)

    def forward(self, x):
        return scale_shift(self.fc(x))


CUSTOM = "graphperf_test::graphperf_test.scale_shift.default"  # as the report lists it


def scale_shift_cost(ins, outs, attrs):
    n = outs[0].numel  # x * 2 + 1: one multiply and one add per element
    return Cost(flops=2 * n, bytes_read=ins[0].nbytes, bytes_written=outs[0].nbytes)


def onnx_model(dim="batch", custom=False):
    """x [dim, K] @ w [K, H] (+ an acme Frob op): a hand-built ONNX model."""
    out = "y" if custom else "z"
    nodes = [helper.make_node("MatMul", ["x", "w"], [out])]
    if custom:
        nodes.append(helper.make_node("Frob", ["y"], ["z"], domain="com.acme"))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim, K]),
                        helper.make_tensor_value_info("w", TensorProto.FLOAT, [K, H])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [dim, H])],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [dim, H])] if custom else [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)])


# -- analyze and capture -------------------------------------------------------------------------


def test_a_workload_name_gives_what_the_cli_prints(tmp_path):
    path = tmp_path / "cli.json"
    assert main(["analyze", "gpt2", "--config", "tiny", "--dtype", "float32", "--target", "a100", "--format", "json",
                 "-o", str(path)]) == 0
    report = graphperf.analyze("gpt2", config="tiny", dtype="float32", target="a100")
    assert report.to_json() == path.read_text()


def test_module_program_and_graph_forms_agree():
    model, x = mlp(), torch.randn(B, K)
    from_module = graphperf.analyze(model, (x,), target="a100")
    from_program = graphperf.analyze(torch.export.export(model, (x,)), target="a100")
    graph = graphperf.capture(model, x, name="mlp")
    from_graph = graphperf.analyze(graph, target=graphperf.load_target("a100"))
    assert from_module.totals["matrix_flops"] == MATRIX
    for report in (from_program, from_graph):
        assert report.totals == from_module.totals
    assert from_graph.model["name"] == "mlp" and graph.meta["model"]["frontend"] == "torch.export"


def test_files_and_onnx_models(tmp_path):
    model, x = mlp(), torch.randn(B, K)
    pt2 = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(model, (x,)), pt2)
    assert graphperf.analyze(pt2).totals["matrix_flops"] == MATRIX
    proto = onnx_model()
    assert graphperf.analyze(proto, batch=B).totals["matrix_flops"] == 2 * B * K * H
    path = tmp_path / "tiny.onnx"
    onnx.save(proto, path)
    assert graphperf.analyze(str(path), batch=3).totals["matrix_flops"] == 2 * 3 * K * H
    with pytest.raises(UsageError, match="unbound dynamic dimensions"):
        graphperf.analyze(path)


@pytest.mark.parametrize("call,match", [
    (lambda: graphperf.analyze(mlp()), "needs example_inputs"),
    (lambda: graphperf.analyze(mlp(), torch.randn(B, K), batch=2), "batch do not apply to an nn.Module"),
    (lambda: graphperf.analyze("gpt2", config="tiny", sequence=8), "sequence= do not apply to a workload name"),
    (lambda: graphperf.analyze("gpt2", torch.randn(2)), "example_inputs do not apply"),
    (lambda: graphperf.analyze("model.onnx", phase="decode"), "phase do not apply to a model file"),
    (lambda: graphperf.analyze(onnx_model(), batch="2"), "must be an int"),
    (lambda: graphperf.analyze(3.5), "cannot analyse a builtins.float"),
    (lambda: graphperf.analyze("gpt2", config="tiny", target=42), "target must be"),
    (lambda: graphperf.analyze("no-such-model"), "unknown model"),
])
def test_usage_errors_name_the_problem(call, match):
    with pytest.raises(UsageError, match=match):
        call()


# -- Report helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report():
    return graphperf.analyze(mlp(), (torch.randn(B, K),), target="h100")


def test_report_renders_like_the_cli(report):
    from graphperf.report.csv_report import to_csv
    from graphperf.report.json_report import to_json

    assert report.to_json() == to_json(report) and report.to_dict()["schema"] == SCHEMA
    assert report.to_csv() == to_csv(report) and report.to_csv().splitlines()[0] == ",".join(COLUMNS)
    assert report.by_op() == list(report.by_op) and report.by_op() is not report.by_op
    assert report.by_module()[0] == report.by_module[0]
    assert repr(report).startswith("<graphperf Report 'Sequential' on h100") and "\n" not in repr(report)


def test_to_pandas_says_how_to_get_pandas(report, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        report.to_pandas()


def test_to_pandas_builds_one_row_per_node(report, monkeypatch):
    fake = types.ModuleType("pandas")
    fake.DataFrame = lambda rows, columns: {"rows": rows, "columns": columns}
    monkeypatch.setitem(sys.modules, "pandas", fake)
    frame = report.to_pandas()
    assert frame["columns"] == COLUMNS and len(frame["rows"]) == len(report.nodes)
    assert frame["rows"][0][COLUMNS.index("name")] == report.nodes[0].name


def test_compare_gives_total_and_per_op_deltas(report):
    h100 = graphperf.load_target("h100")
    faster = graphperf.analyze(mlp(), (torch.randn(B, K),), target=h100.with_overrides(hbm_gbps=2 * h100.hbm_gbps))
    diff = report.compare(faster)
    assert diff.totals["flops"].delta == 0 and diff.totals["bytes"].ratio == 1
    assert diff.totals["memory_s"].ratio == pytest.approx(1 / 2, rel=1e-12)  # memory time = bytes / bandwidth
    matmul = diff.op("matmul")
    assert matmul["nodes"].before == matmul["nodes"].after == 2
    assert matmul["latency_s"].delta == pytest.approx(
        sum(r["latency_s"] for r in faster.by_op if r["name"] == "matmul")
        - sum(r["latency_s"] for r in report.by_op if r["name"] == "matmul"))
    assert json.loads(diff.to_json())["totals"]["flops"]["delta"] == 0 and "latency_s" in str(diff)


# -- user cost rules -------------------------------------------------------------------------------


def test_a_user_rule_counts_a_custom_torch_op():
    model, x = WithCustomOp(), torch.randn(B, K)
    before = graphperf.analyze(model, (x,))
    assert before.totals["unknown_ops"] == {CUSTOM: 1} and before.totals["coverage"] < 1.0
    graphperf.register_rule(torch.ops.graphperf_test.scale_shift.default, scale_shift_cost)
    try:
        after = graphperf.analyze(model, (x,))
        assert after.totals["coverage"] == 1.0 and after.totals["unknown_ops"] == {}
        assert after.totals["flops"] == before.totals["flops"] + 2 * B * H
        assert not after.totals["latency_is_lower_bound"]
    finally:
        graphperf.unregister_rule(CUSTOM)
    assert graphperf.analyze(model, (x,)).totals["unknown_ops"] == {CUSTOM: 1}


def test_a_user_rule_counts_a_vendor_onnx_op_and_torch_compile_graphs():
    @graphperf.register_rule("onnx::com.acme::Frob")
    def frob(ins, outs, attrs):
        return Cost(flops=outs[0].numel, bytes_read=ins[0].nbytes, bytes_written=outs[0].nbytes)

    graphperf.register_rule(torch.ops.graphperf_test.scale_shift, scale_shift_cost)  # every overload
    try:
        assert graphperf.analyze(onnx_model(custom=True), batch=B).totals["flops"] == 2 * B * K * H + B * H
        torch._dynamo.reset()
        with torch.no_grad():
            torch.compile(WithCustomOp(), backend="graphperf", options={"report": "none"})(torch.randn(B, K))
        assert graphperf.last_reports()[0].report.totals["coverage"] == 1.0
    finally:
        graphperf.unregister_rule("onnx::com.acme::Frob")
        graphperf.unregister_rule(torch.ops.graphperf_test.scale_shift)
        torch._dynamo.reset()


def test_a_rule_that_refuses_makes_an_unknown_and_a_rule_that_crashes_is_a_bug():
    from graphperf.count import RuleBug
    from graphperf.errors import RuleError

    def refuses(ins, outs, attrs):
        raise RuleError("scale_shift: only rank-1 scales are modelled")

    def crashes(ins, outs, attrs):
        return attrs["no_such_attribute"]

    model, x = WithCustomOp(), torch.randn(B, K)
    graphperf.register_rule(torch.ops.graphperf_test.scale_shift.default, refuses)
    try:
        report = graphperf.analyze(model, (x,))
        assert report.totals["unknown_ops"] == {CUSTOM: 1}
        node = next(r for r in report.nodes if r.op == CUSTOM)
        assert "only rank-1 scales are modelled" in node.unknown_reason
    finally:
        graphperf.unregister_rule(CUSTOM)
    graphperf.register_rule(torch.ops.graphperf_test.scale_shift.default, crashes)
    try:
        with pytest.raises(RuleBug, match=rf"cost rule of {re.escape(CUSTOM)} failed on node \S+ \(KeyError: "):
            graphperf.analyze(model, (x,))
    finally:
        graphperf.unregister_rule(CUSTOM)


def test_user_rules_never_replace_built_in_ones():
    with pytest.raises(ValueError, match="canonical op that graphperf already counts"):
        graphperf.register_rule("matmul", scale_shift_cost)
    with pytest.raises(ValueError, match="built-in cost rule"):
        graphperf.register_rule(OpId("graphperf", "matmul"), scale_shift_cost)
    with pytest.raises(ValueError, match="domain::name"):
        graphperf.register_rule("frobnicate", scale_shift_cost)
    graphperf.register_rule(CUSTOM, scale_shift_cost)
    try:
        with pytest.raises(ValueError, match="already registered"):
            graphperf.register_rule(CUSTOM, scale_shift_cost)
    finally:
        graphperf.unregister_rule(CUSTOM)
    with pytest.raises(KeyError, match="no user rule"):
        graphperf.unregister_rule(CUSTOM)


# -- user passes -----------------------------------------------------------------------------------


def weights_in_int8(graph):
    values = {n: replace(v, type=graphperf.TensorType(v.type.shape, "int8")) if v.kind == "weight" else v
              for n, v in graph.values.items()}
    return graphperf.Graph(graph.name, graph.nodes, values, graph.outputs, graph.meta)


def test_a_user_pass_changes_the_report_as_written(report):
    x = torch.randn(B, K)
    int8 = graphperf.analyze(mlp(), (x,), target="h100", passes=[weights_in_int8])
    weights = 4 * (K * H + H + H * N + N)  # float32 parameters
    assert report.totals["weight_bytes"] == weights and int8.totals["weight_bytes"] == weights // 4
    assert report.totals["bytes"] - int8.totals["bytes"] == weights - weights // 4  # each weight read once
    assert int8.totals["flops"] == report.totals["flops"] and int8.model["passes"] == ["weights_in_int8"]
    graphperf.register_pass(weights_in_int8)
    try:
        assert graphperf.registered_passes() == ["weights_in_int8"]
        assert graphperf.analyze(mlp(), (x,), target="h100").totals == int8.totals
        torch._dynamo.reset()
        with torch.no_grad():
            torch.compile(mlp(), backend="graphperf", options={"report": "none"})(x)
        compiled = graphperf.last_reports()[0].report
        assert compiled.model["passes"] == ["weights_in_int8"] and compiled.totals["weight_bytes"] == weights // 4
    finally:
        graphperf.unregister_pass(weights_in_int8)
        torch._dynamo.reset()
    assert graphperf.registered_passes() == []


def test_pass_contract_is_enforced():
    from graphperf.passes import canonicalize

    x = torch.randn(B, K)

    def mutates(graph):
        graph.nodes.pop()
        return graph

    with pytest.raises(AnalysisError, match="pass mutates changed its input graph"):
        graphperf.analyze(mlp(), (x,), passes=[mutates])
    with pytest.raises(AnalysisError, match="returned NoneType"):
        graphperf.analyze(mlp(), (x,), passes=[lambda g: None])
    # a result object with a .graph (graphperf's own passes return one) is accepted
    assert graphperf.analyze(mlp(), (x,), passes=[canonicalize]).totals["matrix_flops"] == MATRIX
    graphperf.register_pass(weights_in_int8, name="int8")
    try:
        with pytest.raises(ValueError, match="already registered"):
            graphperf.register_pass(weights_in_int8, name="int8")
    finally:
        graphperf.unregister_pass("int8")
    with pytest.raises(KeyError):
        graphperf.unregister_pass("int8")


# -- the README's Python examples run as written ---------------------------------------------------


def _section(title: str) -> list[str]:
    text = README.read_text()
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


@pytest.mark.parametrize("title", ["## Python API", "## torch.compile backend"])
def test_readme_python_examples_run(title, tmp_path):
    blocks = _section(title)
    assert blocks, f"README section {title!r} has no python example"
    proc = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if title == "## torch.compile backend":
        doc = json.loads((tmp_path / "train_step.json").read_text())
        assert [g["kind"] for g in doc["graphs"]] == ["forward", "backward"] and doc["target"]["name"] == "mi300x"


def test_a_user_pass_whose_requires_are_unmet_is_refused_by_name():
    from graphperf.passes.result import graph_pass

    @graph_pass("needs_fused", requires={"canonical", "fused"})
    def needs_fused(graph):
        return graph

    @graph_pass("keeps_canonical", requires={"canonical"})
    def keeps_canonical(graph):
        return graph

    model, x = mlp(), torch.randn(B, K)
    assert graphperf.analyze(model, (x,), passes=[keeps_canonical]).totals["coverage"] == 1.0  # canonical: met
    with pytest.raises(graphperf.AnalysisError, match=r"pass needs_fused requires a fused graph, .*ran before it: canonicalize"):
        graphperf.analyze(model, (x,), passes=[needs_fused])
