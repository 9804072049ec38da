"""Whether a model fits in the target's device memory: one definition for every report format.

The memory a run needs is ``weight_bytes + peak_activation_bytes`` (every parameter, buffer and
constant, plus the largest set of activations alive at once; graphperf/liveness.py). The capacity is
the target's ``memory_gb`` times 1e9 bytes. ``fits`` is None when the target does not state
``memory_gb`` (capacity unknown, e.g. a CPU whose memory depends on its DIMMs), never a guess.
``memory_shortfall_bytes`` is how much is missing (0 when it fits, None when unknown).

A report whose model does not fit still carries its ``latency_s`` (the time the work would take if
the memory were there), but every renderer says "does not fit" on the latency line, so the figure
cannot be read as a projection of a run that could happen.
"""

from __future__ import annotations

from typing import Any, Optional

from .units import si

__all__ = ["memory_fit", "fit_line", "does_not_fit_note"]


def memory_fit(weight_bytes: int, peak_activation_bytes: int, memory_gb: Optional[float]) -> dict[str, Any]:
    """The report totals `memory_needed_bytes`, `memory_capacity_bytes`, `fits`, `memory_shortfall_bytes`.

    >>> memory_fit(100, 20, None)["fits"] is None
    True
    >>> memory_fit(2 * 10**9, 0, 1)["memory_shortfall_bytes"]
    1000000000
    """
    needed = int(weight_bytes) + int(peak_activation_bytes)
    if memory_gb is None:
        return {"memory_needed_bytes": needed, "memory_capacity_bytes": None, "fits": None,
                "memory_shortfall_bytes": None}
    capacity = int(round(memory_gb * 1e9))
    return {"memory_needed_bytes": needed, "memory_capacity_bytes": capacity, "fits": needed <= capacity,
            "memory_shortfall_bytes": max(0, needed - capacity)}


def fit_line(totals: dict) -> str:
    """The renderers' "memory" line: needed against capacity, and the verdict."""
    needed = totals.get("memory_needed_bytes")
    if needed is None:
        return "-"
    fits = totals.get("fits")
    what = (f"needs {si(needed, 'B')} (weights {si(totals['weight_bytes'], 'B')} + peak activations "
            f"{si(totals['peak_activation_bytes'], 'B')})")
    if fits is None:
        return what + "; the target states no memory_gb, so whether it fits is unknown"
    capacity = si(totals["memory_capacity_bytes"], "B")
    if fits:
        return f"{what}; fits in {capacity}"
    return f"{what}; DOES NOT FIT in {capacity} (short by {si(totals['memory_shortfall_bytes'], 'B')})"


def does_not_fit_note(totals: dict) -> str:
    """The start of the latency line of a model that cannot run on the target; "" when it fits or is unknown."""
    if totals.get("fits") is not False:
        return ""
    return (f"does not fit: needs {si(totals['memory_needed_bytes'], 'B')}, the target has "
            f"{si(totals['memory_capacity_bytes'], 'B')}; the work alone would take ")
