"""The Hugging Face corpus (tests/corpus.py) through the dynamo ONNX exporter (opset 23): every architecture's
.onnx file analyses from the command line with exit 0 and coverage 1.0, and its matrix FLOPs, family by family,
equal the torch.export side's (tests/e2e/test_hf_corpus.py ties those to FlopCounterMode).

Each model is exported once per run, from the corpus's cached ExportedProgram, into one temporary folder. Two
workarounds make the exporter take every model, both test-side (the graphs stay the models'):
- ``aten.contiguous`` is rewritten as ``aten.clone(memory_format=contiguous_format)`` on a copy of the program:
  the exporter's decompositions drop a ``contiguous()`` before a ``view`` of a transposed tensor and then fail
  to trace the view (t5, swin);
- transformers' MoE op ``transformers::grouped_mm_fallback`` has no ONNX translation: `grouped_mm` gives it one
  (each row times the weight its group gathers, the same 2*S*K*N multiply-adds), which onnxruntime runs to
  PyTorch's logits.
"""

from __future__ import annotations

import copy
import functools
import json
import warnings

import numpy as np
import onnx
import pytest
import torch

from graphperf.capture.onnx_capture import capture_onnx
from graphperf.capture.torch_export import capture_exported
from graphperf.cli import main
from tests import corpus
from tests.e2e.test_flopcounter_oracle import matrix_flops_by_family

pytestmark = pytest.mark.slow
aten = torch.ops.aten


def grouped_mm(x, weight, offs):
    """ONNX for transformers::grouped_mm_fallback(x [S, K] sorted by group, weight [G, K, N], offs [G] cumulative
    row ends) -> [S, N]: the group of row s is the number of ends <= s; the row times its group's weight."""
    from onnxscript import opset23 as op

    rows = op.Squeeze(op.Shape(x, start=0, end=1))
    positions = op.Range(op.Constant(value_int=0), rows, op.Constant(value_int=1))
    ends = op.Cast(offs, to=onnx.TensorProto.INT64)
    before = op.Cast(op.LessOrEqual(op.Unsqueeze(ends, [0]), op.Unsqueeze(positions, [1])), to=onnx.TensorProto.INT64)
    group = op.ReduceSum(before, [1], keepdims=0)
    return op.Squeeze(op.MatMul(op.Unsqueeze(x, [1]), op.Gather(weight, group, axis=0)), [1])


def _exportable(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """A copy with every aten.contiguous as a clone to the contiguous format (see the module docstring)."""
    nodes = [n for n in program.graph.nodes if n.op == "call_function" and n.target is aten.contiguous.default]
    if not nodes:
        return program
    program = copy.deepcopy(program)
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target is aten.contiguous.default:
            node.target, node.args, node.kwargs = aten.clone.default, node.args[:1], {
                "memory_format": torch.contiguous_format}
    program.graph_module.recompile()
    return program


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus_onnx")

    @functools.lru_cache(maxsize=None)
    def export(name: str) -> str:
        path = str(folder / f"{name}.onnx")
        table = {}
        if hasattr(torch.ops, "transformers") and hasattr(torch.ops.transformers, "grouped_mm_fallback"):
            table[torch.ops.transformers.grouped_mm_fallback.default] = grouped_mm
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_exportable(corpus.exported(name)), (), path, dynamo=True, opset_version=23,
                              custom_translation_table=table, verbose=False)
        return path

    return export


@pytest.mark.parametrize("name", corpus.names())
def test_onnx_export_analyses_fully_with_the_torch_export_matrix_flops(capsys, onnx_file, name):
    path = onnx_file(name)
    code = main(["analyze", path, "--target", "h100", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    totals = json.loads(out)["totals"]
    assert totals["coverage"] == 1.0 and totals["unknown_ops"] == {}
    ours, _ = matrix_flops_by_family(capture_onnx(path))
    reference, _ = matrix_flops_by_family(capture_exported(corpus.exported(name), name=name))
    assert ours == reference
    assert sum(ours.values()) > 0


def test_the_moe_translation_computes_pytorchs_logits(onnx_file):
    ort = pytest.importorskip("onnxruntime")
    module, inputs = corpus.build("mixtral")
    session = ort.InferenceSession(onnx_file("mixtral"), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    with torch.no_grad():
        want = module(**inputs).logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
