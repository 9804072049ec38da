"""Terminal rendering with rich: totals, coverage, top nodes, by-op and by-module roll-ups, unknown ops, findings.

Every terminal table of graphperf is laid out by `fit_table` for the console's width: a number is never cut
or wrapped (no `2.15 TFL…`), a quantity keeps its unit on its line, text (names, modules) wraps, and when
the numbers do not fit the columns of least value are left out, named in the table's caption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rich.console import Console, Group
from rich.table import Table

from .memory_fit import does_not_fit_note, fit_line
from .units import seconds, si

if TYPE_CHECKING:
    from .model import Report

__all__ = ["Col", "fit_table", "launch_bound_note", "render_table", "wrap"]

_NUMBER = re.compile(r"\(?[-+x~]?\d[\d.e+-]*$")  # a number a unit may follow: 151, 2.15, x0.829, (466
_UNIT = re.compile(r"[A-Za-z/]{1,8}[,;:)]*$")  # us, kB), FLOP/s,
_STARTS_NUMBER = re.compile(r"\(?[-+x~]?\d")
_DECIMAL = re.compile(r"\d\.\d")  # a decimal point: never a place to cut


@dataclass(frozen=True)
class Col:
    """A column of a terminal table. `numeric` cells are right-justified and never wrapped or cut; text
    cells wrap, down to `min_width` characters; when the table is wider than the console the column with
    the highest `drop` is left out first (0: never left out)."""

    header: str
    numeric: bool = False
    drop: int = 0
    min_width: int = 10


def _chunks(line: str) -> list[str]:
    """The words of `line`, a number glued to its label (`compute 62%`) and to its unit (`151 us`)."""
    out: list[str] = []
    for word in line.split():
        last = out[-1].rsplit(" ", 1)[-1] if out else ""
        label = bool(out) and " " not in out[-1] and not last.endswith((",", ":", ";", ")"))
        if out and ((label and _STARTS_NUMBER.match(word)) or (_NUMBER.match(last) and _UNIT.match(word))):
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def wrap(text: str, width: int) -> str:
    """`text` broken into lines of at most `width` characters between its chunks (`_chunks`: a number stays
    with its label and its unit, unless that is wider than `width`); a word longer than the width is cut
    after a separator (`blocks.0.`, `layer_norm_`), or at the width when it has none."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = para[:len(para) - len(para.lstrip())]  # the indent
        pending = _chunks(para)
        while pending:
            chunk = pending.pop(0)
            if len(chunk) > width and " " in chunk:
                pending[:0] = chunk.split(" ")
                continue
            if len(chunk) > width:
                if line.strip():
                    lines.append(line)
                    line = ""
                cut = max((i + 1 for i in range(1, width) if chunk[i] in "._/[," and not _DECIMAL.match(chunk, i - 1)),
                          default=width)
                lines.append(chunk[:cut])
                pending.insert(0, chunk[cut:])
                continue
            if line.strip() and len(line) + 1 + len(chunk) > width:
                lines.append(line)
                line = chunk
            else:
                line = f"{line} {chunk}" if line.strip() else line + chunk
        lines.append(line)
    return "\n".join(lines)


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def fit_table(cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int, **table_kwargs) -> Table:
    """A rich `Table` of `rows` no wider than `width` (rich's default box: 3 characters per column and 1).
    Numeric columns get their widest cell; text columns share what is left, the widest narrowed first (as
    rich does), never under their `min_width`; columns are left out, highest `drop` first, until that fits,
    and the caption names them. `table_kwargs` go to `Table` (title, show_header, caption, ...)."""
    rows = [[str(cell) for cell in row] for row in rows]
    show_header = table_kwargs.get("show_header", True)

    def natural(i: int) -> int:
        cells = [len(line) for row in rows for line in row[i].splitlines()]
        return max([*cells, _longest_word(cols[i].header) if show_header else 1, 1])

    def least(i: int) -> int:
        return natural(i) if cols[i].numeric else min(natural(i), max(cols[i].min_width, 1))

    keep = list(range(len(cols)))
    while sum(least(i) + 3 for i in keep) + 1 > width and any(cols[i].drop for i in keep):
        keep.remove(max((i for i in keep if cols[i].drop), key=lambda i: cols[i].drop))
    text = [i for i in keep if not cols[i].numeric]
    room = width - 1 - sum(3 + (0 if i in text else natural(i)) for i in keep)
    level = max((natural(i) for i in text), default=0)
    while level > 1 and sum(min(natural(i), max(level, least(i))) for i in text) > room:
        level -= 1
    widths = {i: natural(i) if i not in text else min(natural(i), max(level, least(i))) for i in keep}
    dropped = [cols[i].header for i in range(len(cols)) if i not in keep]
    if dropped:
        note = f"not shown at {width} columns: {', '.join(dropped)} (a wider terminal or --format json has them)"
        table_width = sum(widths.values()) + 3 * len(keep) + 1
        table_kwargs["caption"] = wrap(" ".join(filter(None, (table_kwargs.get("caption"), note))), table_width)
        table_kwargs.setdefault("caption_justify", "left")
    table = Table(**table_kwargs)
    for i in keep:
        table.add_column(wrap(cols[i].header, widths[i]), justify="right" if cols[i].numeric else "left",
                         width=widths[i], overflow="fold")
    for row in rows:
        table.add_row(*(row[i] if cols[i].numeric else wrap(row[i], widths[i]) for i in keep))
    return table


def _totals(report: Report, width: int) -> Table:
    t = report.totals
    rows: list[tuple[str, str]] = []
    lower = " (lower bound: unknown ops excluded)" if t["latency_is_lower_bound"] else ""
    rows.append(("projected latency",
                 does_not_fit_note(t) + seconds(t["latency_s"]) + lower + f" ({t['mode']} mode)"))
    rows.append(("device / host / idle", f"device {seconds(t['device_s'])}, host issue {seconds(t['host_s'])}, "
                                         f"device idle {seconds(t['idle_s'])}, wall {seconds(t['latency_s'])}"))
    note = launch_bound_note(t)
    if note:
        rows.append(("launch-bound", note))
    shares = ", ".join(f"{b} {s / t['latency_s']:.0%}" for b, s in t["latency_by_bound_s"].items()
                       if t["latency_s"] > 0 and s > 0)
    rows.append(("time by bound", shares or "-"))
    rows.append(("FLOPs", f"{si(t['flops'], 'FLOP')} ({si(t['matrix_flops'], 'FLOP')} on matrix units)"))
    rows.append(("transcendentals", si(t["transcendentals"], "")))
    rows.append(("bytes moved", si(t["bytes"], "B")))
    rows.append(("weights", f"{si(t['weight_bytes'], 'B')} ({si(t['parameters'], '')} parameters)"))
    rows.append(("peak live activations", si(t["peak_activation_bytes"], "B")))
    rows.append(("memory", fit_line(t)))
    rows.append(("coverage", f"{t['coverage']:.1%} of {t['nodes']} nodes have a cost rule"))
    if t["unknown_ops"]:
        rows.append(("unknown ops", ", ".join(f"{op} x{n}" for op, n in t["unknown_ops"].items())))
    table = fit_table((Col("what", min_width=12), Col("value", min_width=30)), rows, width, show_header=False,
                      title=f"{report.model.get('description', report.model.get('name'))} on {report.target.title}",
                      title_justify="left")
    table.columns[0].style = "bold"
    return table


def launch_bound_note(totals: dict) -> str:
    """One line when the device idles more than half the wall: by how much, and what a CUDA graph would take."""
    if not totals.get("launch_bound") or not totals["latency_s"]:
        return ""
    line = f"device idle {totals['idle_s'] / totals['latency_s']:.0%} of the wall"
    graph_s = totals["graph_mode_latency_s"]
    if totals["mode"] != "graph" and 0 < graph_s < totals["latency_s"]:
        how = ("--mode graph" if totals["mode"] == "eager"
               else "torch.compile mode='reduce-overhead': --mode reduce-overhead")
        line += (f"; a CUDA graph ({how}) would take {seconds(graph_s)} instead of "
                 f"{seconds(totals['latency_s'])} ({totals['latency_s'] / graph_s:.1f}x)")
    return line


def _rollup(title: str, rows: list[dict], limit: int, width: int) -> Table:
    cols = (Col("name"), Col("nodes", True), Col("FLOPs", True), Col("bytes", True), Col("latency", True),
            Col("share", True))
    return fit_table(cols, [(g["name"], str(g["nodes"]), si(g["flops"], "FLOP"), si(g["bytes"], "B"),
                             seconds(g["latency_s"]), f"{g['time_share']:.1%}") for g in rows[:limit]],
                     width, title=title, title_justify="left")


def _top_nodes(report: Report, limit: int, width: int) -> Table:
    # left out first when narrow: the module path, the output type, intensity, device time
    cols = (Col("node"), Col("op", min_width=8), Col("module", drop=4, min_width=16),
            Col("output", drop=3, min_width=18), Col("FLOPs", True), Col("bytes", True), Col("FLOP/B", True, drop=2),
            Col("device", True, drop=1), Col("latency", True), Col("bound", min_width=7))
    known = [r for r in report.nodes if r.latency_s is not None]
    rows = [(r.name, r.op, r.module or "-", ",".join(r.outputs), si(r.flops, "FLOP"),
             si(r.bytes_read + r.bytes_written, "B"), "-" if r.intensity is None else f"{r.intensity:.3g}",
             seconds(r.device_s), seconds(r.latency_s), r.bound)
            for r in sorted(known, key=lambda r: (-r.latency_s, r.name))[:limit]]
    return fit_table(cols, rows, width, title=f"top {limit} nodes by projected latency", title_justify="left")


def _findings(report: Report, limit: int, width: int) -> Table:
    """The misaligned GEMMs (graphperf/alignment.py): up to `limit` nodes and one --pad that fixes them all."""
    found = [f for f in report.findings if f["kind"] == "misaligned_gemm"]
    pads: dict[int, int] = {}
    for f in found:
        for p in f["pad"]:
            pads[p["size"]] = max(pads.get(p["size"], 1), p["multiple"])
    more = f"; {len(found) - limit} more in --format json" if len(found) > limit else ""
    return fit_table((Col("node"), Col("op", min_width=8), Col("module", drop=1), Col("misaligned", min_width=20)),
                     [(f["node"], f["op"], f["module"] or "-", "; ".join(f["dims"])) for f in found[:limit]], width,
                     title=f"{len(found)} misaligned GEMM{'' if len(found) == 1 else 's'}: rows not a multiple of 16 "
                           "bytes (GPU kernels fall back to unvectorized loads)", title_justify="left",
                     caption="pad with: graphperf whatif MODEL --pad " + ",".join(f"{s}={m}" for s, m in pads.items())
                             + more, caption_justify="left")


def render_table(report: Report, console: Console, top: int = 10) -> None:
    width = console.width
    parts = [_totals(report, width), _rollup("by op", report.by_op, top, width),
             _rollup("by module (layers rolled up)", report.by_module, top, width), _top_nodes(report, top, width)]
    if report.findings:
        parts.append(_findings(report, top, width))
    console.print(Group(*parts))
