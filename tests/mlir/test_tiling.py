"""MLIR-level tiling: a linalg contraction's GEMM comes from its loops and maps, and its best tile is the
one the graph-level what-if tiling finds for the same matmul/conv (same tile model, independent path)."""

from __future__ import annotations

import pytest
import torch

from graphperf.capture.torch_export import capture_module
from graphperf.mlir.convert import to_graph
from graphperf.mlir.tiling import gemm_of, tile_contractions
from graphperf.passes.tiling import machine_for, node_problem, search
from graphperf.target import load_target

from ._util import lower_module
from .test_families import Fn

CASES = [
    ("mm", Fn(torch.mm), (torch.randn(256, 512), torch.randn(512, 384)), (1, 256, 384, 512)),
    ("bmm", Fn(torch.bmm), (torch.randn(4, 128, 64), torch.randn(4, 64, 96)), (4, 128, 96, 64)),
    # implicit GEMM: M = N*Ho*Wo, N = Cout, K = Cin*kh*kw
    ("conv", Fn(lambda x, w: torch.nn.functional.conv2d(x, w), torch.nn.Parameter(torch.randn(32, 16, 3, 3))),
     (torch.randn(2, 16, 18, 18),), (1, 2 * 16 * 16, 32, 16 * 3 * 3)),
]


@pytest.mark.parametrize("name, module, args, bmnk", CASES, ids=[c[0] for c in CASES])
def test_contraction_tile_matches_graph_level_tiling(name, module, args, bmnk):
    target = load_target("h100")
    graph = to_graph(lower_module(module, *args))
    (tile,) = tile_contractions(graph, target)
    assert tile.gemm == bmnk and tile.reason == ""
    level = capture_module(module, args)
    (node,) = [n for n in level.nodes if n.op.name in ("matmul", "conv")]
    best, _ = search(node_problem(level, node), machine_for(target, level.node_dtype(node)))
    assert tile.tile == best.tile
    assert tile.latency_s == pytest.approx(best.latency_s, rel=1e-9)


def test_a_contraction_no_tile_fits_is_a_stated_refusal():
    target = load_target("h100", {"onchip_sram_per_unit_kb": "1"})  # 1 KB: smaller than any candidate tile
    graph = to_graph(lower_module(Fn(torch.mm), torch.randn(64, 64), torch.randn(64, 64)))
    (tile,) = tile_contractions(graph, target)
    assert tile.tile is None and "no candidate tile fits" in tile.reason


def test_gemm_of_rejects_a_node_that_is_not_a_contraction():
    graph = to_graph(lower_module(Fn(torch.exp), torch.randn(8, 8)))
    node = next(n for n in graph.nodes if n.op.name == "linalg")
    with pytest.raises(ValueError, match="not a linalg contraction"):
        gemm_of(graph, node)
