"""The HTML page of one projected generation (`graphperf serve --format html`): built from a
`ServeResult.to_dict()` (schema ``graphperf.serve/1``) alone, with the report's page helpers
(graphperf/report/html_assets.py), so the page shows the figures the JSON holds and nothing else.
"""

from __future__ import annotations

from typing import Any

from ..report.html_assets import Section, document, esc, kv_table

__all__ = ["render_serve_html"]


def _title(d: dict[str, Any]) -> str:
    s = d["settings"]
    return (f"graphperf serve: {d['model']} on {s['devices']} x {d['target']} (tp {s['tp']}, pp {s.get('pp', 1)}, "
            f"batch {s['batch']})")


def render_serve_html(d: dict[str, Any]) -> str:
    """The self-contained page of a `ServeResult.to_dict()`.

    Parameters
    ----------
    d : dict
        ``ServeResult.to_dict()`` (schema ``graphperf.serve/1``).

    Returns
    -------
    str
        One HTML document: nothing is fetched when it is viewed.
    """
    body = kv_table([(k, esc(v)) for k, v in d["settings"].items()])
    return document(_title(d), [Section("settings", "Settings", body)], d["schema"])
