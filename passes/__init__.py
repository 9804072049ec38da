"""Analysis and rewrite passes over a `graphperf.ir.Graph` (installed as `graphperf.passes`).

Every rewrite returns a `PassResult` and declines candidates as `Refusal`s with a `RefusalKind`; `graph_pass`
declares a pass's ``requires``/``ensures`` (passes/result.py)."""

from .canonicalize import CanonicalizeResult, canonicalize
from .fuse_chains import fuse_elementwise, fuse_epilogue, fuse_norm
from .liveness import PeakMemory, peak_activation_memory
from .precision import rewrite_precision
from .result import PassResult, Refusal, RefusalKind, graph_pass

__all__ = ["CanonicalizeResult", "PassResult", "PeakMemory", "Refusal", "RefusalKind", "canonicalize",
           "fuse_elementwise", "fuse_epilogue", "fuse_norm", "graph_pass", "peak_activation_memory",
           "rewrite_precision"]
