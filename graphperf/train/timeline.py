"""The backward of a data-parallel training step as two streams: compute, and the gradient all-reduces overlapped
with it.

- The compute stream runs the backward's nodes in graph order (their end times come from the execution model,
  graphperf/execution.py); it ends at ``compute_end_s``.
- Bucket i's all-reduce is ready at ``ready_s[i]`` (the end of the node that produces its last gradient,
  passes/data_parallel.py). The all-reduces run in bucket order on one communication stream, as DDP launches them:

      start_i = max(ready_s[i], end_{i-1})        end_i = start_i + duration_s[i]        (end_{-1} = 0)

- The backward ends when both streams have: ``backward_s = max(compute_end_s, end_last)``; the communication
  the compute did not hide is ``exposed_comm_s = backward_s - compute_end_s = max(0, end_last - compute_end_s)``,
  between 0 and ``allreduce_s`` (the sum of the durations).

Assumed: communication does not slow the compute it overlaps (no contention for SMs, HBM bandwidth or copy engines:
NCCL's kernels take a few SMs on a real GPU, so overlapped compute runs slightly slower than projected), and the
all-reduce starts the moment its bucket is ready (no host delay). Pure arithmetic on floats, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["OverlapTimeline", "overlap"]


@dataclass(frozen=True)
class OverlapTimeline:
    """The two streams of one backward: per all-reduce its ready, start and end times, and the totals."""

    compute_end_s: float
    ready_s: tuple[float, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]
    duration_s: tuple[float, ...]

    @property
    def allreduce_s(self) -> float:
        """Time the communication stream is busy: the sum of the all-reduces' durations."""
        return sum(self.duration_s)

    @property
    def backward_s(self) -> float:
        """The backward's wall time: the later of the two streams' ends."""
        return max(self.compute_end_s, self.end_s[-1]) if self.end_s else self.compute_end_s

    @property
    def exposed_comm_s(self) -> float:
        """Communication not hidden behind the backward's compute: ``max(0, end_last - compute_end_s)`` (kept
        within ``[0, allreduce_s]`` against float rounding)."""
        if not self.end_s:
            return 0.0
        return max(0.0, min(self.end_s[-1] - self.compute_end_s, self.allreduce_s))

    @property
    def hidden_fraction(self) -> float:
        """Share of the all-reduce time overlapped with compute (1.0 when there is none)."""
        total = self.allreduce_s
        return max(0.0, 1.0 - self.exposed_comm_s / total) if total > 0 else 1.0


def overlap(compute_end_s: float, ready_s: Sequence[float], duration_s: Sequence[float]) -> OverlapTimeline:
    """Queue the all-reduces (bucket order) on the communication stream beside a backward whose compute ends at
    `compute_end_s` (the module docstring's recurrence).

    >>> t = overlap(10.0, ready_s=[2.0, 6.0, 10.0], duration_s=[3.0, 1.0, 2.0])
    >>> t.start_s, t.end_s, t.backward_s, t.exposed_comm_s, t.allreduce_s
    ((2.0, 6.0, 10.0), (5.0, 7.0, 12.0), 12.0, 2.0, 6.0)
    """
    if len(ready_s) != len(duration_s):
        raise ValueError(f"{len(ready_s)} ready times for {len(duration_s)} all-reduces")
    start, end = [], []
    prev = 0.0
    for r, d in zip(ready_s, duration_s):
        s = max(r, prev)
        prev = s + d
        start.append(s)
        end.append(prev)
    return OverlapTimeline(compute_end_s, tuple(ready_s), tuple(start), tuple(end), tuple(duration_s))
