"""Lower a small torch module through torch-mlir and count its linalg graph."""

from __future__ import annotations

import torch

from graphperf.count import count
from graphperf.mlir.convert import to_graph
from graphperf.mlir.lower import lower_exported


def lower_module(module: torch.nn.Module, *args, keep_ops=()):
    ep = torch.export.export(module, args, strict=False)
    return lower_exported(ep, keep_ops=keep_ops)


def counted(module: torch.nn.Module, *args):
    """[(node, cost)] of the linalg graph, in order."""
    graph = to_graph(lower_module(module, *args))
    return graph, [(nc.node, nc.cost) for nc in count(graph)]


def only(pairs, source_prefix: str):
    """The single (node, cost) whose source op starts with `source_prefix`."""
    hits = [p for p in pairs if p[0].source_op.startswith(source_prefix)]
    assert len(hits) == 1, [p[0].source_op for p in pairs]
    return hits[0]


def graph_of(text: str):
    """The linalg graph of an MLIR module written by hand (stage linalg, frontend "mlir")."""
    from torch_mlir import ir

    from graphperf.mlir.lower import Lowered

    context = ir.Context()
    module = ir.Module.parse(text, context=context)
    return to_graph(Lowered(module, context, "linalg", "mlir"))
