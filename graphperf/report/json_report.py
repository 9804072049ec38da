"""JSON rendering of a `Report` (schema `graphperf.report/1`): deterministic, byte for byte."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..version import __version__
from .records import SCHEMA, SERIALIZED_FIELDS, NodeRecord

if TYPE_CHECKING:
    from .model import Report

__all__ = ["report_to_dict", "to_json"]

_NODE_FIELDS = SERIALIZED_FIELDS


def _node_dict(record: NodeRecord) -> dict[str, Any]:
    # NodeRecord holds only scalars and lists of strings: a flat dict equals dataclasses.asdict's
    # result without its recursive deep copy (the slowest part of rendering 100k nodes).
    return {name: getattr(record, name) for name in _NODE_FIELDS}


def report_to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "graphperf", "version": __version__},
        "model": report.model,
        "target": report.target.to_dict(),
        "conventions": report.conventions,
        "totals": report.totals,
        "findings": report.findings,
        "by_op": report.by_op,
        "by_module": report.by_module,
        "nodes": [_node_dict(r) for r in report.nodes],
    }


def to_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=1, allow_nan=False) + "\n"
