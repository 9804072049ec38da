"""One workload through torch.export and through ONNX (dynamo exporter, opset 23) gives the same
totals: FLOPs within 1%, bytes within 5%, coverage 100% on both (DESIGN.md, "What good means")."""

from __future__ import annotations

import pytest
import torch

from graphperf.count import count
from graphperf.passes import canonicalize
from tests.conftest import tiny_graph, tiny_workload, workload_cases


def _totals(graph):
    # both as an inference runtime runs them: batch norms folded (the ONNX exporter folded them already;
    # a torch.export graph keeps them by default, since eager PyTorch runs them as kernels)
    counts = count(canonicalize(graph, fold_batch_norm=True).graph)
    known = [c.cost for c in counts if c.cost is not None]
    unknown = sorted({str(c.node.op) for c in counts if c.cost is None})
    return {
        "flops": sum(c.flops for c in known),
        "matrix_flops": sum(c.matrix_flops for c in known),
        "bytes": sum(c.bytes for c in known),
        "coverage": len(known) / len(counts),
        "unknown": unknown,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name,phase", workload_cases())
def test_torch_export_and_onnx_agree(name, phase, tmp_path):
    from graphperf.capture.onnx_capture import capture_onnx

    wl = tiny_workload(name, phase)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(wl.module, wl.args, str(path), dynamo=True, opset_version=23, verbose=False)
    via_torch = _totals(tiny_graph(name, phase))
    via_onnx = _totals(capture_onnx(str(path)))
    assert via_torch["unknown"] == [] and via_onnx["unknown"] == []
    assert via_torch["coverage"] == 1.0 and via_onnx["coverage"] == 1.0
    assert via_onnx["matrix_flops"] == pytest.approx(via_torch["matrix_flops"], rel=0.01)
    assert via_onnx["flops"] == pytest.approx(via_torch["flops"], rel=0.01)
    assert via_onnx["bytes"] == pytest.approx(via_torch["bytes"], rel=0.05)
