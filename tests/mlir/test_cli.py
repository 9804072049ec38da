"""`graphperf analyze --level mlir` and `graphperf mlir`: reports, annotated MLIR that round-trips, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from graphperf.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _mlp_onnx(path, batch=4, k=64, n=32):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n])
    w = helper.make_tensor("w", TensorProto.FLOAT, [k, n], [0.5] * (k * n))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "mlp", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return str(path)


def _ops(module):
    from graphperf.mlir.convert import _main_block

    return list(_main_block(module).operations)


def test_annotated_linalg_round_trips_through_the_bundled_parser(capsys, tmp_path):
    from torch_mlir import ir

    out = tmp_path / "gpt2.mlir"
    code, _, err = run(capsys, "mlir", "gpt2", "-o", str(out), "--target", "h100")
    assert code == 0, err
    code, report_json, err = run(capsys, "analyze", "gpt2", "--config", "tiny", "--level", "mlir", "--format", "json")
    assert code == 0, err
    report = json.loads(report_json)
    from graphperf.mlir.lower import parsing_context

    with parsing_context():  # torch and TMTensor (causal attention lowers to tm_tensor.attention)
        module = ir.Module.parse(out.read_text())
        ops = _ops(module)
        flops = {op.name: 0 for op in ops}
        total = 0
        matmuls = 0
        for op in ops:
            attrs = {name: op.attributes[name] for name in op.attributes}
            if "graphperf.flops" in attrs:
                total += ir.IntegerAttr(attrs["graphperf.flops"]).value
                assert "graphperf.latency_s" in attrs and "graphperf.bound" in attrs
            if op.name == "linalg.matmul":  # [M, K] x [K, N]: 2MNK, from the operand types
                a, b = (ir.RankedTensorType(v.type).shape for v in list(op.operands)[:2])
                assert ir.IntegerAttr(attrs["graphperf.flops"]).value == 2 * a[0] * a[1] * b[1]
                assert ir.StringAttr(attrs["graphperf.graph_node"]).value.startswith("linear")
                matmuls += 1
    assert matmuls > 0
    # the figures on the ops are the report's, op for op
    assert total == report["totals"]["flops"]
    assert report["model"]["level"] == "mlir" and report["totals"]["coverage"] == 1.0


def test_annotated_mlir_parses_with_torch_mlir_opt(capsys, tmp_path):
    opt = os.path.join(os.path.dirname(sys.executable), "torch-mlir-opt")
    if not os.path.exists(opt):
        pytest.skip("torch-mlir-opt is not installed beside this Python")
    for stage in ("torch", "linalg"):
        out = tmp_path / f"{stage}.mlir"
        assert run(capsys, "mlir", "gpt2", "--phase", "decode", "--stage", stage, "-o", str(out))[0] == 0
        text = out.read_text()
        assert "graphperf.flops" in text and "graphperf.graph_node" in text
        done = subprocess.run([opt, str(out), "-o", os.devnull], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_onnx_file_at_the_mlir_level(capsys, tmp_path):
    batch, k, n = 4, 64, 32
    path = _mlp_onnx(tmp_path / "mlp.onnx", batch, k, n)
    code, out, err = run(capsys, "analyze", path, "--level", "mlir", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    # MatMul 2*batch*k*n on the matrix unit, relu one max per output element (as at the graph level)
    assert report["totals"]["matrix_flops"] == 2 * batch * k * n
    assert report["totals"]["flops"] == 2 * batch * k * n + batch * n
    by_node = {}
    for node in report["nodes"]:
        by_node.setdefault(node["name"].rpartition("#")[0], 0)
        by_node[node["name"].rpartition("#")[0]] += node["flops"]
    assert by_node == {"mm": 2 * batch * k * n, "relu": batch * n}
    # the report's own roll-up per graph node says the same
    rolled = {row["name"]: row["flops"] for row in report["model"]["mlir"]["by_graph_node"]}
    assert rolled == by_node


def test_full_size_llm_is_refused_in_one_line(capsys):
    code, out, err = run(capsys, "analyze", "llama3-8b", "--level", "mlir")
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and "--config tiny" in err


def test_bad_stage_is_a_usage_error(capsys):
    code, _, err = run(capsys, "mlir", "gpt2", "--stage", "tosa")
    assert code == 2 and "tosa" in err
