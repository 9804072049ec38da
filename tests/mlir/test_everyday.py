"""Everyday use of the MLIR level (issue 17): a dynamic ONNX file bound with --dim."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from graphperf.cli import main
from graphperf.errors import UsageError

K, N = 64, 32  # the ONNX MatMul
BATCH, FEATURES = 2, 256  # the .pt2 Linear


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _dynamic_mlp(path) -> str:
    """y = relu(x @ w), x: [batch, K] with `batch` a named dynamic dimension (dim_param)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N])
    w = helper.make_tensor("w", TensorProto.FLOAT, [K, N], [(i % 7) * 0.25 for i in range(K * N)])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "mlp", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return str(path)



def _linear_pt2(tmp_path) -> str:
    """relu(linear(x)), x: [BATCH, FEATURES], with real weights, saved with torch.export.save."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(FEATURES, FEATURES), torch.nn.ReLU())
    ep = torch.export.export(module, (torch.randn(BATCH, FEATURES),), strict=False)
    path = str(tmp_path / "linear.pt2")
    torch.export.save(ep, path)
    return path


# --- item 1: --dim at the MLIR level --------------------------------------------------------------------------

def test_dynamic_onnx_at_the_mlir_level_with_dim_matches_the_graph_level(capsys, tmp_path):
    path = _dynamic_mlp(tmp_path / "mlp.onnx")
    batch = 3
    totals = {}
    for level in ("graph", "mlir"):
        code, out, err = run(capsys, "analyze", path, "--dim", f"batch={batch}", "--level", level, "--format", "json")
        assert code == 0, err
        totals[level] = json.loads(out)["totals"]
    # MatMul: 2*batch*K*N on the matrix unit; Relu: one max per output element
    assert totals["mlir"]["matrix_flops"] == totals["graph"]["matrix_flops"] == 2 * batch * K * N
    assert totals["mlir"]["flops"] == totals["graph"]["flops"] == 2 * batch * K * N + batch * N
    assert totals["mlir"]["coverage"] == 1.0


def test_graphperf_mlir_binds_dim(capsys, tmp_path):
    path = _dynamic_mlp(tmp_path / "mlp.onnx")
    code, out, err = run(capsys, "mlir", path, "--dim", "batch=5")
    assert code == 0, err
    assert "tensor<5x64xf32>" in out and "graphperf.flops" in out and "?x" not in out


def test_unknown_dim_is_refused_as_at_the_graph_level(capsys, tmp_path):
    path = _dynamic_mlp(tmp_path / "mlp.onnx")
    errors = []
    for argv in (("analyze", path, "--dim", "seq=4", "--level", "graph"),
                 ("analyze", path, "--dim", "seq=4", "--level", "mlir"),
                 ("mlir", path, "--dim", "seq=4")):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        errors.append(err)
    assert errors[0] == errors[1] == errors[2]
    assert "'seq' is not in the model" in errors[0] and "batch" in errors[0]


def test_unbound_dynamic_dim_names_it_and_the_flag(capsys, tmp_path):
    path = _dynamic_mlp(tmp_path / "mlp.onnx")
    for argv in (("analyze", path, "--level", "mlir"), ("mlir", path)):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        assert "batch" in err and "--dim batch=N" in err


def test_lower_onnx_refuses_an_unbound_dim(tmp_path):
    from graphperf.mlir.lower import lower_onnx

    with pytest.raises(UsageError, match=r"unbound dynamic dimensions batch \(input 'x' dim 0\).*--dim batch=N"):
        lower_onnx(_dynamic_mlp(tmp_path / "mlp.onnx"))


def test_dim_on_a_pt2_file_or_a_workload_is_refused_in_one_line(capsys, tmp_path):
    path = _linear_pt2(tmp_path)
    code, _, err = run(capsys, "mlir", path, "--dim", "batch=2")
    assert code == 2 and err.count("\n") == 1 and ".onnx" in err
    code, _, err = run(capsys, "mlir", "gpt2", "--dim", "batch=2")
    assert code == 2 and err.count("\n") == 1 and "--batch" in err
