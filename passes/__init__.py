"""Analysis and rewrite passes over a `graphperf.ir.Graph` (installed as `graphperf.passes`)."""

from .canonicalize import CanonicalizeResult, canonicalize
from .fuse_elementwise import fuse_elementwise
from .liveness import PeakMemory, peak_activation_memory
from .precision import rewrite_precision

__all__ = ["CanonicalizeResult", "PeakMemory", "canonicalize", "fuse_elementwise", "peak_activation_memory",
           "rewrite_precision"]
