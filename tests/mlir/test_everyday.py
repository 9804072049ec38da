"""Everyday use of the MLIR level (issue 17): a dynamic ONNX file bound with --dim, and `graphperf mlir` on a
model with real weights, whose literals are elided unless --keep-weights."""

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


# --- item 2: weights elided unless --keep-weights ----------------------------------------------------------------

def _linalg_ops(text):
    from torch_mlir import ir

    from graphperf.mlir.convert import _main_block
    from graphperf.mlir.lower import parsing_context

    with parsing_context():
        module = ir.Module.parse(text)
        out = []
        for op in _main_block(module).operations:
            attrs = {name: op.attributes[name] for name in op.attributes}
            flops = ir.IntegerAttr(attrs["graphperf.flops"]).value if "graphperf.flops" in attrs else None
            out.append((op.name, flops, "graphperf.graph_node" in attrs))
        return out


def test_weights_are_elided_and_the_mlir_still_parses_with_its_annotations(capsys, tmp_path):
    path = _linear_pt2(tmp_path)
    weight_bytes = (FEATURES * FEATURES + FEATURES) * 4
    out = tmp_path / "linear.mlir"
    code, _, err = run(capsys, "mlir", path, "-o", str(out))
    assert code == 0, err
    text = out.read_text()
    assert len(text.encode()) < weight_bytes / 20  # the weights' hex alone would be 2x weight_bytes
    header = text.split("\n")[0]
    assert header.startswith(f"// graphperf: 2 weight tensors ({weight_bytes / 1e6:.3g} MB) elided")
    assert "--keep-weights" in header
    assert "note: 2 weight tensors" in err and "--keep-weights" in err
    ops = _linalg_ops(text)
    matmuls = [flops for name, flops, _ in ops if name == "linalg.matmul"]
    assert matmuls == [2 * BATCH * FEATURES * FEATURES]
    assert all(has_origin for name, _, has_origin in ops if name.startswith("linalg."))


def test_keep_weights_writes_their_values(capsys, tmp_path):
    path = _linear_pt2(tmp_path)
    weight = torch.export.load(path).state_dict["0.weight"].detach()
    out = tmp_path / "linear.mlir"
    code, _, err = run(capsys, "mlir", path, "-o", str(out), "--keep-weights")
    assert code == 0, err
    text = out.read_text()
    assert weight.numpy().tobytes().hex().upper() in text
    assert not text.startswith("//") and "note:" not in err
    assert [f for name, f, _ in _linalg_ops(text) if name == "linalg.matmul"] == [2 * BATCH * FEATURES * FEATURES]


def test_onnx_weights_are_elided_at_the_torch_stage(capsys, tmp_path):
    path = _dynamic_mlp(tmp_path / "mlp.onnx")  # one weight: K*N floats, elided; nothing else to elide
    code, out, err = run(capsys, "mlir", path, "--dim", "batch=1", "--stage", "torch")
    assert code == 0, err
    assert out.startswith(f"// graphperf: 1 weight tensors ({K * N * 4 / 1e6:.3g} MB) elided")
