"""`NodeTime`, one node's projected time, and `node_time`, the one place its roofline parts are combined.

Guarantees: this module imports only `graphperf.peaks`, so the projection (`graphperf.project`) and the tile
model's pass (`passes/tiling.py`, whose `tiled_time` projects a tiled node) both build node times here
without importing each other. `graphperf.project` re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .peaks import Bound, PeakUsed

__all__ = ["NodeTime", "node_time"]


@dataclass(frozen=True, slots=True)
class NodeTime:
    """One node's projected time on a target and its roofline parts (times None for an unknown node).

    Attributes
    ----------
    compute_s, memory_s : float or None
        Time of the node's arithmetic at the peak it runs at, and of its bytes at the memory bandwidth.
    overhead_s : float or None
        The target's launch overhead before the kernel (0 for a free node).
    latency_s : float or None
        ``device_s + overhead_s``: the node's time in ``graph`` mode.
    bound : Bound
        ``compute``, ``memory``, ``overhead``, ``free`` (no work, no launch) or ``unknown`` (a `str` enum).
    peak : PeakUsed or None
        The peak the matrix work ran at (None when the node does no matrix work).
    device_s : float or None
        The kernel's time on the device, without host or launch time.
    """

    compute_s: Optional[float]
    memory_s: Optional[float]
    overhead_s: Optional[float]
    latency_s: Optional[float]
    bound: Bound
    peak: Optional[PeakUsed] = None
    device_s: Optional[float] = None  # the kernel's time on the device: no host or launch term

    @property
    def matrix_dtype(self) -> str:
        """The report's text for `peak`: its field, "<dtype> (vector unit)", or "" when none."""
        return self.peak.label if self.peak is not None else ""


def node_time(compute_s: float, memory_s: float, overhead_s: float, exposed_s: float = 0.0,
              peak: Optional[PeakUsed] = None) -> NodeTime:
    """latency = max(compute, memory) + exposed (time that overlaps neither: the tile model's pipeline fill
    and drain) + launch overhead; bound = overhead when it exceeds the work, else the larger side."""
    work_s = max(compute_s, memory_s) + exposed_s
    if overhead_s > work_s:
        bound = Bound.OVERHEAD
    elif compute_s >= memory_s:
        bound = Bound.COMPUTE
    else:
        bound = Bound.MEMORY
    return NodeTime(compute_s, memory_s, overhead_s, work_s + overhead_s, bound, peak, work_s)
