"""The graph rewrite behind every what-if and the ``compiled`` execution mode: precision, padding, fusion, tiling.

`rewrite(graph, fuse, precision, target, groups, tile, pad)` canonicalizes `graph` and runs the rewrites in a
fixed order, each on the graph the previous one returned; it returns (new graph, rewrites, refused) and never
mutates its input. Fusion rules run in the order of `FUSE_RULES` (`--fuse auto` is all of them); `parse_fuse`
reads a ``--fuse`` value.

Guarantees: this module imports only passes and the layers below them (never the pipeline), so
`graphperf.pipeline` (the compiled mode) and `passes/whatif.py` (which projects before and after through the
pipeline) both use it without importing each other. `passes.whatif` re-exports every name.
"""

from __future__ import annotations

from typing import Mapping

from graphperf.errors import UsageError
from graphperf.ir import Graph

from .fuse_attention import fuse_attention
from .fuse_chains import fuse_elementwise, fuse_epilogue, fuse_norm
from .fuse_named import fuse_named
from .pad import pad_dims
from .precision import rewrite_precision
from .tiling import apply_tiling

__all__ = ["FUSE_CHOICES", "FUSE_RULES", "parse_fuse", "rewrite"]

FUSE_RULES = ("attention", "epilogue", "norm", "elementwise")  # the order they run in
FUSE_CHOICES = ("none", "auto", *FUSE_RULES)


def parse_fuse(text: str) -> list[str]:
    """`none` -> []; `auto` -> every rule; `epilogue,norm` -> those rules, in the order they run."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in FUSE_CHOICES]
    if bad or not parts:
        raise UsageError(f"--fuse {text!r}: choose none, auto, or a comma-separated list of "
                         f"{', '.join(FUSE_RULES)}")
    if "auto" in parts:
        return list(FUSE_RULES)
    return [r for r in FUSE_RULES if r in parts]


def rewrite(graph: Graph, fuse: list[str] = (), precision: Mapping[str, str] | None = None, target=None,
            groups: list[list[str]] = (), tile=None, pad=None):
    """canonicalize -> precision -> padding -> named groups -> fusion rules -> tiling; returns (new graph,
    rewrites, refused).

    `target` bounds the on-chip tiles of attention and norm kernels (passes/fuse_attention.py,
    passes/fuse_chains.py); without one those checks are skipped (norm) or refuse (attention).
    `tile` (a `TileSpec` from passes/tiling.py) tiles the matmul, conv and attention nodes left after
    fusion (a matrix node inside a fused group keeps the group's roofline projection). `pad` (a `PadSpec`
    from passes/pad.py) pads GEMM dimensions before fusion, so fused groups are counted from padded shapes.
    """
    from .canonicalize import canonicalize

    g = canonicalize(graph).graph
    rewrites: list[dict] = []
    refused: list[dict] = []
    if precision:
        res = rewrite_precision(g, precision)
        g = res.graph
        rewrites.append(res.to_dict(precision))
    if pad is not None:
        padded = pad_dims(g, pad)
        g = padded.graph
        rewrites.append(padded.rewrite)
        refused.extend(padded.refused)
    passes = [lambda x, t: fuse_named(x, list(groups))] if groups else []
    passes += [_FUSE_PASSES[rule] for rule in FUSE_RULES if rule in fuse]
    for run in passes:
        res = run(g, target)
        g = res.graph
        rewrites.append(res.to_dict())
        refused.extend(res.refused)
    if tile is not None:
        if target is None:
            raise UsageError("tiling needs a target (compute units, on-chip memory)")
        tiled = apply_tiling(g, target, tile)
        g = tiled.graph
        rewrites.append(tiled.rewrite)
        refused.extend(tiled.refused)
    return g, rewrites, refused


_FUSE_PASSES = {"attention": fuse_attention, "epilogue": fuse_epilogue, "norm": fuse_norm,
                "elementwise": fuse_elementwise}
