"""The rate a node's arithmetic runs at on a target: one home for the matrix-unit routing, the vector-unit
fallback and the efficiencies. The projection (graphperf/project.py), the tile model (passes/tiling.py), the
precision what-if and the HTML roofline all ask here, so a chart's roof is the rate the node was projected at.

- matrix work: `Target.matrix_peak_flops(dtype, family)` (the routing table in graphperf/target.py) times
  `Target.matrix_efficiency_for(family)`; a dtype no matrix unit serves runs on the vector peak of its dtype,
  still at the matrix efficiency (a GEMM kernel on SIMT cores);
- vector work (non-matrix FLOPs and transcendentals): `Target.vector_peak_flops(dtype)` x `vector_efficiency`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .target import OP_MATRIX_EFFICIENCY

__all__ = ["Bound", "PeakUsed", "matrix_peak", "vector_rate"]


class Bound(StrEnum):
    """What sets a node's projected time: its arithmetic, its bytes, the launch before it, nothing (a view),
    or nothing known (no cost rule). A `str`: ``Bound.MEMORY == "memory"``, and JSON writes ``"memory"``."""

    COMPUTE = "compute"
    MEMORY = "memory"
    OVERHEAD = "overhead"
    FREE = "free"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PeakUsed:
    """The peak a node's matrix work ran at.

    Attributes
    ----------
    field : str
        The target field of the matrix peak ("matrix_bf16_tflops"); "" when no matrix unit serves the dtype
        and the vector unit ran the matrix work.
    dtype : str
        The node's dtype (canonical).
    family : str
        The op family whose matrix efficiency applies (`graphperf.ops.matrix_family`).
    peak_flops : float
        The peak, FLOP/s, before efficiency.
    efficiency : float
        `Target.matrix_efficiency_for(family)`.
    efficiency_field : str
        The target field `efficiency` comes from ("matrix_efficiency_attention", or "matrix_efficiency").

    Example
    -------
    >>> from graphperf.target import load_target
    >>> p = matrix_peak(load_target("h100"), "bfloat16", "attention")
    >>> p.field, p.label, p.rate_flops == p.peak_flops * p.efficiency
    ('matrix_bf16_tflops', 'matrix_bf16_tflops', True)
    >>> matrix_peak(load_target("h100"), "float32", "matmul").label  # no TF32 unless allow_tf32
    'float32 (vector unit)'
    """

    field: str
    dtype: str
    family: str
    peak_flops: float
    efficiency: float
    efficiency_field: str = "matrix_efficiency"

    @property
    def on_vector_unit(self) -> bool:
        """True when the vector unit ran the matrix work (no matrix unit serves the dtype)."""
        return not self.field

    @property
    def rate_flops(self) -> float:
        """The achievable rate, FLOP/s: ``peak_flops * efficiency``."""
        return self.peak_flops * self.efficiency

    @property
    def label(self) -> str:
        """The report's ``matrix_dtype`` text: the field, or "<dtype> (vector unit)"."""
        return self.field or f"{self.dtype} (vector unit)"


def matrix_peak(target, dtype: str, family: str) -> PeakUsed:
    """The peak and efficiency of `family` matrix work in `dtype` on `target` (module docstring)."""
    peak = target.matrix_peak_flops(dtype, family)
    efficiency = target.matrix_efficiency_for(family)
    own = OP_MATRIX_EFFICIENCY.get(family)
    field = own if own is not None and getattr(target, own) is not None else "matrix_efficiency"
    if peak is None:
        return PeakUsed("", dtype, family, target.vector_peak_flops(dtype), efficiency, field)
    return PeakUsed(peak[1], dtype, family, peak[0], efficiency, field)


def vector_rate(target, dtype: str) -> float:
    """The achievable rate of non-matrix work in `dtype` on `target`, FLOP/s (vector peak x vector_efficiency)."""
    return target.vector_peak_flops(dtype) * target.vector_efficiency
