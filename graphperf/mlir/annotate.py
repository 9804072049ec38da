"""Attach graphperf's figures to the ops of a lowered module, as discardable attributes.

Attributes (all in the ``graphperf.`` namespace, so MLIR tools that do not know them keep them):

- every op with a node: ``graphperf.graph_node`` (the torch.export/ONNX node it came from);
- linalg stage, every op that is a node of the linalg graph: ``graphperf.flops``,
  ``graphperf.matrix_flops``, ``graphperf.transcendentals``, ``graphperf.bytes_read``,
  ``graphperf.bytes_written`` (i64), ``graphperf.latency_s`` (f64, on the report's target) and
  ``graphperf.bound`` (string); an op graphperf could not cost gets ``graphperf.unknown`` (the reason)
  instead of figures, never zeros; a contraction also gets ``graphperf.tile`` (array<i64: Mt, Nt, Kt>,
  the best tile of graphperf.mlir.tiling) and ``graphperf.tile_latency_s``;
- torch stage: the figures of the graph node (graph-level rules) on the first op of each graph node.

The module is printed with locations (``loc("gp:<node>")``) and still parses with
``torch_mlir.ir.Module.parse`` and ``torch-mlir-opt``.
"""

from __future__ import annotations

from typing import Any, Mapping

from .convert import _main_block
from .lower import origin_of

__all__ = ["annotate", "to_text", "ATTRS"]

ATTRS = ("flops", "matrix_flops", "transcendentals", "bytes_read", "bytes_written")


def _set(op, record: Any, ir) -> None:
    i64 = ir.IntegerType.get_signless(64)
    if record.flops is None:
        op.attributes["graphperf.unknown"] = ir.StringAttr.get(record.unknown_reason or "no cost rule")
        return
    for key in ATTRS:
        op.attributes[f"graphperf.{key}"] = ir.IntegerAttr.get(i64, int(getattr(record, key)))
    op.attributes["graphperf.latency_s"] = ir.FloatAttr.get_f64(float(record.latency_s))
    op.attributes["graphperf.bound"] = ir.StringAttr.get(record.bound)


def annotate(lowered, report) -> int:
    """Write the report's per-op figures onto `lowered.module`'s ops; returns how many ops got figures.

    linalg stage: `report` is the MLIR-level report (node names ``<graph node>#<op index>``);
    torch stage: the graph-level report (node names are graph node names).
    """
    from torch_mlir import ir

    records: Mapping[str, Any] = {r.name: r for r in report.nodes}
    tiles = {t["node"]: t for t in report.model.get("mlir", {}).get("contraction_tiles", [])}
    done = 0
    seen: set[str] = set()
    with lowered.context, ir.Location.unknown():
        for k, op in enumerate(_main_block(lowered.module).operations):
            origin = origin_of(op.location)
            if lowered.stage == "linalg":
                record = records.get(f"{origin or 'mlir'}#{k}")
            else:
                record = records.get(origin) if origin not in seen else None
                seen.add(origin)
            if origin:
                op.attributes["graphperf.graph_node"] = ir.StringAttr.get(origin)
            if record is not None:
                _set(op, record, ir)
                done += 1
                tile = tiles.get(record.name)
                if tile is not None and tile.get("tile"):
                    op.attributes["graphperf.tile"] = ir.DenseI64ArrayAttr.get(tile["tile"])
                    op.attributes["graphperf.tile_latency_s"] = ir.FloatAttr.get_f64(float(tile["latency_s"]))
    return done


def to_text(lowered) -> str:
    """The module's text with locations, as torch-mlir-opt reads it."""
    return lowered.module.operation.get_asm(enable_debug_info=True)
