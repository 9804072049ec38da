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
``torch_mlir.ir.Module.parse`` and ``torch-mlir-opt``; weights are elided unless asked for (`to_text`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .convert import _main_block
from .lower import origin_of

__all__ = ["annotate", "to_text", "elision_note", "ATTRS", "ELIDE_ELEMENTS", "ELIDE_BYTES"]

ATTRS = ("flops", "matrix_flops", "transcendentals", "bytes_read", "bytes_written")
ELIDE_ELEMENTS = 64  # inline tensor constants over this many elements are weights: elided by default
ELIDE_BYTES = 8 * ELIDE_ELEMENTS  # resource blobs (torch-mlir's weights) over this many bytes: elided
# MLIR's resource limit counts the characters of a blob as printed: '"0x' + 4-byte alignment + 2 per byte + '"'
_RESOURCE_CHARS = 2 * ELIDE_BYTES + 12


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


def _is_resource(attr, ir) -> bool:
    try:
        ir.DenseResourceElementsAttr(attr)
    except ValueError:
        return False
    return True


def _elided(lowered) -> dict[str, int]:
    """Bytes of every tensor constant that `to_text` elides, by attribute (a shared resource once; splats,
    which print as one value, never)."""
    from torch_mlir import ir

    out: dict[str, int] = {}

    def visit(op) -> None:
        for name in op.attributes:
            attr = op.attributes[name]
            if isinstance(attr, ir.DenseElementsAttr):  # downcast by the bindings (DenseFPElementsAttr, ...)
                if attr.is_splat:
                    continue
                resource = False
            elif type(attr) is ir.Attribute and _is_resource(attr, ir):  # dense_resource is not downcast
                resource = True
            else:
                continue
            shaped = ir.ShapedType(attr.type)
            if not shaped.has_static_shape:
                continue
            numel = math.prod(shaped.shape)
            nbytes = numel * max(getattr(shaped.element_type, "width", 8), 8) // 8
            if (nbytes > ELIDE_BYTES) if resource else (numel > ELIDE_ELEMENTS):
                out[str(attr) if resource else f"{len(out)}"] = nbytes
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    visit(inner.operation)

    with lowered.context:
        visit(lowered.module.operation)
    return out


def elision_note(lowered) -> str:
    """What `to_text` elides from `lowered` by default, as one line ("" if nothing): count, size, how to keep it."""
    elided = _elided(lowered)
    if not elided:
        return ""
    return (f"{len(elided)} weight tensors ({sum(elided.values()) / 1e6:.3g} MB) elided from the MLIR "
            "(dense_resource without data); graphperf mlir --keep-weights writes them")


def to_text(lowered, *, keep_weights: bool = False) -> str:
    """The module's text with locations, as torch-mlir-opt reads it.

    Weights (resource blobs over `ELIDE_BYTES` bytes, inline constants over `ELIDE_ELEMENTS` elements) are elided
    unless `keep_weights`: a blob is left out of the ``dialect_resources`` section (its ops keep the
    ``dense_resource<name>`` reference), an inline constant prints as ``dense_resource<__elided__>``; both parse
    back (tested). The text then starts with a ``// graphperf:`` line, `elision_note`.
    """
    if keep_weights:
        return lowered.module.operation.get_asm(enable_debug_info=True)
    note = elision_note(lowered)
    text = lowered.module.operation.get_asm(enable_debug_info=True, large_elements_limit=ELIDE_ELEMENTS,
                                            large_resource_limit=_RESOURCE_CHARS)
    return f"// graphperf: {note}\n{text}" if note else text
