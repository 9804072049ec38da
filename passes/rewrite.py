"""The graph rewrite behind every what-if and the ``compiled`` execution mode: precision, padding, fusion, tiling.

`rewrite(graph, fuse, precision, target, groups, tile, pad)` canonicalizes `graph` and runs the rewrites in a
fixed order, each on the graph the previous one returned; it returns (new graph, rewrites, refused) and never
mutates its input. Fusion rules run in the order of `FUSE_RULES` (`--fuse auto` is all of them); `parse_fuse`
reads a ``--fuse`` value.

`run_passes(graph, steps, ensured)` is the chain itself: each step (a pass, or a `functools.partial` of one)
returns a `PassResult` (passes/result.py); before it runs, its contract's ``requires`` must be among the
properties `ensured` holds or an earlier step's contract ``ensures``, else `AnalysisError` names the pass, the
missing property and the passes that ran before it. It returns one `PassResult`: the last graph, whether any
step modified it, every step's rewrite records and refusals in order.

Guarantees: this module imports only passes and the layers below them (never the pipeline), so
`graphperf.pipeline` (the compiled mode) and `passes/whatif.py` (which projects before and after through the
pipeline) both use it without importing each other. `passes.whatif` re-exports every name.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Mapping, Sequence

from graphperf.errors import UsageError
from graphperf.ir import Graph

from .fuse_attention import fuse_attention
from .fuse_chains import fuse_elementwise, fuse_epilogue, fuse_norm
from .fuse_named import fuse_named
from .pad import pad_dims
from .precision import rewrite_precision
from .result import PassResult, check_requires
from .tiling import apply_tiling

__all__ = ["FUSE_CHOICES", "FUSE_RULES", "parse_fuse", "rewrite", "run_passes"]

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

    if tile is not None and target is None:
        raise UsageError("tiling needs a target (compute units, on-chip memory)")
    steps: list[Callable[[Graph], PassResult]] = []
    if precision:
        steps.append(partial(rewrite_precision, spec=precision))
    if pad is not None:
        steps.append(partial(pad_dims, spec=pad))
    if groups:
        steps.append(partial(fuse_named, specs=list(groups)))
    steps += [partial(_FUSE_PASSES[rule], target=target) for rule in FUSE_RULES if rule in fuse]
    if tile is not None:
        steps.append(partial(apply_tiling, target=target, spec=tile))
    canon = canonicalize(graph)  # its counts are the report's business (pipeline), not a what-if rewrite
    res = run_passes(canon.graph, steps, ensured=canonicalize.contract.ensures)
    return res.graph, res.rewrites, res.refused


def run_passes(graph: Graph, steps: Sequence[Callable[[Graph], PassResult]],
               ensured: Iterable[str] = ()) -> PassResult:
    """Run `steps` in order, each on the graph the previous one returned, checking each step's contract first
    (module docstring); `ensured`: the properties `graph` already has (e.g. ``{"canonical"}``)."""
    have, ran = set(ensured), []
    g, modified, rewrites, refused = graph, False, [], []
    for step in steps:
        contract = check_requires(step, have, ran)
        res = step(g)
        g, modified = res.graph, modified or res.modified
        rewrites.extend(res.rewrites)
        refused.extend(res.refused)
        have |= contract.ensures
        ran.append(contract.name)
    return PassResult(g, modified, rewrites, refused)


_FUSE_PASSES = {"attention": fuse_attention, "epilogue": fuse_epilogue, "norm": fuse_norm,
                "elementwise": fuse_elementwise}
