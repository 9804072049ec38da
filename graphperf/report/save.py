"""`Report.save(path)`: a report written in the format its file name's extension names, as `-o` does."""

from __future__ import annotations

import os

from ..errors import UsageError

__all__ = ["FORMAT_OF_EXTENSION", "format_of_path", "save_report"]

#: Report formats by file extension (`-o r.html`, `report.save("r.json")`).
FORMAT_OF_EXTENSION = {".json": "json", ".csv": "csv", ".html": "html", ".htm": "html", ".txt": "table"}

#: Columns of a table written to a file: wide enough that no column is dropped.
FILE_TABLE_WIDTH = 160


def format_of_path(path: str) -> str | None:
    """The format `path`'s extension names, or None for an extension graphperf does not know."""
    return FORMAT_OF_EXTENSION.get(os.path.splitext(path)[1].lower())


def save_report(report, path: str | os.PathLike) -> str:
    """Write `report` to `path` (.json, .csv, .html or .txt, the terminal table) and return the format."""
    path = os.fspath(path)
    fmt = format_of_path(path)
    if fmt is None:
        raise UsageError(f"Report.save({path!r}): cannot tell the format from the extension; name the file "
                         f"*.json, *.csv, *.html or *.txt")
    if fmt == "table":
        from rich.console import Console

        from .table import render_table

        with open(path, "w", encoding="utf-8") as fh:
            render_table(report, Console(file=fh, width=FILE_TABLE_WIDTH, color_system=None))
        return fmt
    if fmt == "html":
        from .html import render_html

        text = render_html(report)
    else:
        text = report.to_json() if fmt == "json" else report.to_csv()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return fmt
