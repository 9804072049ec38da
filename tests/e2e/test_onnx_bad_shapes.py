"""Bad shapes in an ONNX file, through the CLI: one line naming the tensor and the file, exit 2, no traceback.

Negative dimensions and absurd sizes (above 2**31 per dimension or 2**40 elements, which covers every shape of
more than 2**63 elements) are refused wherever a shape is written: graph inputs, initializers, sparse
initializers, Constant values, value_info and graph outputs. A zero-size dimension is refused on a graph input
(the model would do no work) and where an initializer's data contradicts it; empty initializers without data
(Resize's unused roi, placeholders) stay valid.
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from graphperf.cli import main

HUGE = 2**62  # [HUGE, 4] has 2**64 elements: more than an int64 holds


def _save(path, x_shape=(4, 8), init=None, value_info=None, output_shape=None, const=None, sparse=None):
    """x -> Relu -> y (+ y2 = y + w when an initializer, Constant or sparse initializer `w` is given)."""
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    inits, sparses, outputs = [], [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)]
    if init is not None or const is not None or sparse is not None:
        if init is not None:
            inits.append(init)
        if const is not None:
            nodes.insert(0, helper.make_node("Constant", [], ["w"], name="const", value=const))
        if sparse is not None:
            sparses.append(sparse)
        nodes.append(helper.make_node("Add", ["y", "w"], ["y2"], name="add"))
        outputs.append(helper.make_tensor_value_info("y2", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              outputs, inits, value_info=value_info or [], sparse_initializer=sparses)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.save(model, str(path))
    return str(path)


def _tensor(name, dims, values):
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.float_data.extend(values)
    return t


def _raw(name, dims, nbytes):
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.raw_data = b"\0" * nbytes
    return t


def _sparse(dims):
    values = _tensor("w", [1], [1.0])
    indices = TensorProto(name="w_idx", data_type=TensorProto.INT64, dims=[1])
    indices.int64_data.append(0)
    return helper.make_sparse_tensor(values, indices, dims)


CASES = [
    # (id, builder kwargs, what the one line must name)
    ("input-negative", dict(x_shape=(-5, 8)), ["input 'x'", "negative dimension -5"]),
    ("input-zero", dict(x_shape=(0, 8)), ["input 'x'", "zero-size"]),
    ("input-absurd", dict(x_shape=(HUGE, 4)), ["input 'x'", "2**40 elements"]),
    ("input-absurd-dim", dict(x_shape=(2**40, 1)), ["input 'x'", "2**31 per dimension"]),
    ("initializer-negative", dict(init=_raw("w", [-5, 8], 0)), ["initializer 'w'", "negative dimension -5"]),
    ("initializer-absurd", dict(init=_raw("w", [HUGE, 4], 0)), ["initializer 'w'", "2**40 elements"]),
    ("initializer-zero-with-data", dict(init=_tensor("w", [0, 8], [0.0] * 8)), ["initializer 'w'", "holds 8 values"]),
    ("initializer-raw-mismatch", dict(init=_raw("w", [4, 8], 12)), ["initializer 'w'", "holds 12 bytes"]),
    ("constant-negative", dict(const=_tensor("w", [-1, 8], [])), ["value 'w'", "negative dimension -1"]),
    ("sparse-negative", dict(sparse=_sparse([-3, 8])), ["sparse initializer 'w'", "negative dimension -3"]),
    ("value-info-negative", dict(value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, -8])]),
     ["value_info 'y'", "negative dimension -8"]),
    ("value-info-absurd", dict(value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [HUGE, HUGE])]),
     ["value_info 'y'", "2**40 elements"]),
    ("output-negative", dict(output_shape=[-4, 8]), ["output 'y'", "negative dimension -4"]),
]


@pytest.mark.parametrize("kwargs, expected", [pytest.param(k, e, id=i) for i, k, e in CASES])
def test_bad_shape_is_one_line_exit_2(capsys, tmp_path, kwargs, expected):
    path = _save(tmp_path / "bad.onnx", **kwargs)
    code = main(["analyze", path, "--format", "json"])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    assert "Traceback" not in err and out == ""
    for text in expected:
        assert text in lines[0], lines[0]


def test_empty_initializers_and_stripped_weights_stay_valid(capsys, tmp_path):
    # an initializer with a zero-size dimension and no data is a valid empty tensor: concatenated, it adds nothing
    empty = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[0, 8])
    graph = helper.make_graph([helper.make_node("Concat", ["x", "w"], ["y"], axis=0)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], [empty],
                              value_info=[helper.make_tensor_value_info("w", TensorProto.FLOAT, [0, 8])])
    path = tmp_path / "empty.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    assert main(["analyze", str(path), "--format", "json"]) == 0, capsys.readouterr().err
    # weights stripped from a file (dims, no data) are not checked against their shape
    stripped = _save(tmp_path / "stripped.onnx", init=TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 8]))
    assert main(["analyze", stripped, "--format", "json"]) == 0, capsys.readouterr().err
