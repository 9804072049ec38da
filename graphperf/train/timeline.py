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
all-reduce starts the moment its bucket is ready (no host delay). ZeRO-1/2's bucket reduce-scatters use `overlap`
as well; ZeRO-3 / FSDP's per-unit all-gathers, for which the compute also waits, run as a program of `Compute`,
`Comm` and `Wait` items through `schedule` (the same recurrence, below). Pure arithmetic on floats, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["OverlapTimeline", "overlap", "Compute", "Comm", "Wait", "Schedule", "schedule"]


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


# -- a program of compute, collectives and waits (ZeRO-3 / FSDP) -------------------------------------------------
#
# FSDP's step is a host program: compute segments queued on the compute stream, collectives queued on the one
# communication stream, and waits (the compute stream waits for a collective's end before the next segment).
# The same recurrence as DDP's buckets, with the ready time read off the compute stream where the host issued the
# collective:
#
#     Compute(d):     start = t_compute                          t_compute = start + d
#     Wait(c):                                                   t_compute = max(t_compute, end_c)
#     Comm(c, d):     ready_c = t_compute   start_c = max(ready_c, t_comm)   end_c = t_comm = start_c + d
#
# A collective issued in a unit's pre-forward hook, after that unit's own Wait, is ready when the unit starts: this
# is FSDP's prefetch one unit ahead (its rate limiter keeps at most two units gathered).


@dataclass(frozen=True)
class Compute:
    """A compute segment of `duration_s` on the compute stream (`name`: what it runs, e.g. a unit's nodes)."""

    name: str
    duration_s: float


@dataclass(frozen=True)
class Comm:
    """A collective issued here, of `duration_s` on the communication stream; `name` identifies it for `Wait`."""

    name: str
    duration_s: float


@dataclass(frozen=True)
class Wait:
    """The compute stream waits until collective `name` (issued before) has ended."""

    name: str


@dataclass(frozen=True)
class Schedule:
    """The two streams of a program: per collective (issue order) its ready, start and end; the compute stream's
    end (`compute_end_s`), its busy time (`compute_s`) and the wall time (`end_s`, the later stream's end)."""

    names: tuple[str, ...]
    ready_s: tuple[float, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]
    duration_s: tuple[float, ...]
    compute_end_s: float
    compute_s: float

    @property
    def comm_s(self) -> float:
        """Time the communication stream is busy."""
        return sum(self.duration_s)

    @property
    def wall_s(self) -> float:
        """The program's wall time: the later of the two streams' ends."""
        return max(self.compute_end_s, max(self.end_s, default=0.0))

    @property
    def exposed_comm_s(self) -> float:
        """Wall time the compute stream spent without compute: ``wall_s - compute_s`` (waits for collectives and the
        communication after the last compute), within ``[0, comm_s]``."""
        return max(0.0, min(self.wall_s - self.compute_s, self.comm_s))

    def collective(self, name: str) -> tuple[float, float, float]:
        """(ready_s, start_s, end_s) of the collective `name`."""
        i = self.names.index(name)
        return self.ready_s[i], self.start_s[i], self.end_s[i]


def schedule(program: Sequence) -> Schedule:
    """Run a program of `Compute`, `Comm` and `Wait` items on a compute and a communication stream (the recurrence
    above). A `Wait` for a collective not issued before it is a ValueError.

    >>> s = schedule([Comm("ag0", 2.0), Wait("ag0"), Comm("ag1", 3.0), Compute("u0", 1.0), Wait("ag1"),
    ...               Compute("u1", 4.0)])
    >>> s.start_s, s.end_s, s.compute_end_s, s.wall_s, s.exposed_comm_s
    ((0.0, 2.0), (2.0, 5.0), 9.0, 9.0, 4.0)
    """
    t_compute = t_comm = busy = 0.0
    names, ready, start, end, dur = [], [], [], [], []
    ends: dict[str, float] = {}
    for item in program:
        if isinstance(item, Compute):
            t_compute += item.duration_s
            busy += item.duration_s
        elif isinstance(item, Comm):
            s = max(t_compute, t_comm)
            t_comm = s + item.duration_s
            names.append(item.name)
            ready.append(t_compute)
            start.append(s)
            end.append(t_comm)
            dur.append(item.duration_s)
            ends[item.name] = t_comm
        elif isinstance(item, Wait):
            if item.name not in ends:
                raise ValueError(f"wait for {item.name!r} before it is issued")
            t_compute = max(t_compute, ends[item.name])
        else:
            raise TypeError(f"not a program item: {item!r}")
    return Schedule(tuple(names), tuple(ready), tuple(start), tuple(end), tuple(dur), t_compute, busy)
