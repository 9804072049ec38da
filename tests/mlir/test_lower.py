"""The torch-mlir import: weights imported from raw bytes exactly as torch-mlir's default path does,
locations that name graph nodes, and the refusal of meta-device weights."""

from __future__ import annotations

import pytest
import torch

from graphperf.errors import UsageError
from graphperf.mlir.lower import _literal_hooks, lower_exported, origin_of


class Mixed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(3, 5, dtype=torch.bfloat16))
        self.b = torch.nn.Parameter(torch.randn(5, 2))
        self.register_buffer("i", torch.arange(6).reshape(2, 3))
        self.register_buffer("h", torch.randn(4, dtype=torch.float16), persistent=False)

    def forward(self, x):
        return (x.to(torch.bfloat16) @ self.a).float() @ self.b, self.i + 1, self.h * 2


def test_raw_byte_literals_equal_torch_mlirs_default_import():
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_d
    from torch_mlir.extras.fx_importer import FxImporter

    ep = torch.export.export(Mixed(), (torch.randn(2, 3),), strict=False)
    texts = []
    for hooks in (None, _literal_hooks()):
        ctx = ir.Context()
        torch_d.register_dialect(ctx)
        imp = FxImporter(context=ctx, hooks=hooks)
        imp.import_program(ep)
        texts.append(imp.module.operation.get_asm())
    assert "dense_resource" in texts[0] and texts[0] == texts[1]


def test_every_op_names_its_graph_node():
    ep = torch.export.export(Mixed(), (torch.randn(2, 3),), strict=False)
    lowered = lower_exported(ep)
    names = {n.name for n in ep.graph.nodes}
    block = lowered.module.body.operations[0].regions[0].blocks[0]
    origins = {origin_of(op.location) for op in block.operations if op.name.startswith("linalg.")}
    assert origins and origins <= names


def test_origin_of_reads_name_locations_not_file_locations():
    assert origin_of('loc(fused["gp:linear_3", "gp:add"])') == "linear_3"
    assert origin_of('loc("/blocks.0/MatMul")') == "/blocks.0/MatMul"
    assert origin_of('loc("model.py":12:0)') == ""


def test_meta_weights_are_refused_in_one_line():
    with torch.device("meta"):
        module = torch.nn.Linear(4, 4)
    ep = torch.export.export(module, (torch.randn(2, 4, device="meta"),), strict=False)
    with pytest.raises(UsageError, match="meta device"):
        lower_exported(ep)
