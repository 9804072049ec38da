"""Terminal tables of what graphperf knows: the bundled targets (`graphperf targets`) and the reference
workloads (`graphperf models`).

Guarantees: every hardware figure is shown in its unit with three significant digits (`989 TFLOP/s`,
`3.35 TB/s`, `1.4 us`; never a raw float such as `0.7801000000001` or `989400000000000.0`), an absent
figure is `-`, and the tables fit the console's width (`fit_table`): a number is never cut, the columns of
least value are left out first and named in the caption.
"""

from __future__ import annotations

from typing import Optional, Sequence

from rich.console import Console

from .table import Col, fit_table
from .units import seconds, si

__all__ = ["render_targets", "render_models", "target_row", "TARGET_COLUMNS"]

#: The columns of `graphperf targets`; the efficiencies go first when the terminal is narrow, then calibration.
TARGET_COLUMNS = (Col("name", min_width=9), Col("device", min_width=12), Col("bf16 matrix", True),
                  Col("fp32 vector", True), Col("HBM", True), Col("efficiency matrix/vector/memory", True, drop=3),
                  Col("launch", True, drop=1), Col("calibrated", True, drop=2))


def _per_s(value: Optional[float], scale: float, unit: str) -> str:
    return "-" if value is None else si(value * scale, unit)


def target_row(t) -> tuple[str, ...]:
    """One target's cells: peaks in FLOP/s and bandwidth in B/s with SI prefixes, launch overhead in seconds."""
    return (t.name, t.label, _per_s(getattr(t, "matrix_bf16_tflops", None), 1e12, "FLOP/s"),
            _per_s(t.vector_fp32_tflops, 1e12, "FLOP/s"), _per_s(t.hbm_gbps, 1e9, "B/s"),
            "/".join(f"{e:.2f}" for e in (t.matrix_efficiency, t.vector_efficiency, t.memory_efficiency)),
            seconds(t.launch_overhead_us * 1e-6), "yes" if t.calibrated else "no")


def render_targets(targets: Sequence, console: Console) -> None:
    console.print(fit_table(TARGET_COLUMNS, [target_row(t) for t in targets], console.width,
                            title="graphperf targets (dense peaks)", title_justify="left"))


def render_models(specs: Sequence, console: Console) -> None:
    """The workloads: name, configs, phases, dtype, description (the family goes first when narrow)."""
    cols = (Col("name", min_width=12), Col("family", drop=2), Col("configs"), Col("phases", min_width=8),
            Col("dtype", drop=1), Col("description", min_width=24))
    rows = [(s.name, s.family, ", ".join(sorted(s.configs)), ", ".join(s.phases), s.default_dtype, s.description)
            for s in specs]
    console.print(fit_table(cols, rows, console.width, title="graphperf reference workloads", title_justify="left"))
