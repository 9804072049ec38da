"""CSV rendering: one row per node, the JSON node record's columns (shapes joined by ';')."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from .records import SERIALIZED_FIELDS

if TYPE_CHECKING:
    from .model import Report

__all__ = ["to_csv", "COLUMNS"]

COLUMNS = list(SERIALIZED_FIELDS)


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report.nodes:
        row = []
        for name in COLUMNS:
            v = getattr(r, name)
            row.append(";".join(v) if isinstance(v, list) else ("" if v is None else v))
        writer.writerow(row)
    return buf.getvalue()
