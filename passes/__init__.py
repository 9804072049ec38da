"""Analysis and rewrite passes over a `graphperf.ir.Graph` (installed as `graphperf.passes`)."""

from .canonicalize import CanonicalizeResult, canonicalize
from .fuse_chains import fuse_elementwise, fuse_epilogue, fuse_norm
from .liveness import PeakMemory, peak_activation_memory
from .precision import rewrite_precision

__all__ = ["CanonicalizeResult", "PeakMemory", "canonicalize", "fuse_elementwise", "fuse_epilogue", "fuse_norm",
           "peak_activation_memory", "rewrite_precision"]
