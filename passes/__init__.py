"""Analysis and rewrite passes over a `graphperf.ir.Graph` (installed as `graphperf.passes`)."""

from .canonicalize import CanonicalizeResult, canonicalize
from .liveness import PeakMemory, peak_activation_memory

__all__ = ["CanonicalizeResult", "PeakMemory", "canonicalize", "peak_activation_memory"]
