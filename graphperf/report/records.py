"""The report's lowest layer: its schema name, its written conventions and the per-node record.

Guarantees: this module imports nothing from graphperf, so the renderers (`json_report`, `csv_report`,
`html`, `table`) read a report's rows and constants from here and never import `model` at run time
(`model` imports them, lazily, for `Report.to_json` and the other conveniences; `model` re-exports
`SCHEMA`, `CONVENTIONS` and `NodeRecord`, so ``from graphperf.report.model import NodeRecord`` works).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

__all__ = ["SCHEMA", "CONVENTIONS", "NodeRecord", "SERIALIZED_FIELDS"]

SCHEMA = "graphperf.report/1"

CONVENTIONS = {
    "flop": "one add or one multiply; a multiply-add is 2 FLOPs; matmul MxK by KxN is 2*M*K*N",
    "matrix_flops": "the part of flops that runs on a matrix unit: matmul, convolution, attention matmuls",
    "transcendentals": "exp, log, erf, tanh, sigmoid, sqrt, rsqrt, sin, cos counted apart from flops",
    "attention": "two matmuls plus scale and softmax per score; causal masking halves all score work "
                 "(FlopCounterMode counts causal attention in full)",
    "bytes": "what an unfused kernel moves: each input read once per consuming node, each output written once; "
             "gathers read only the gathered rows; views and non-copying reshapes move nothing",
    "fp32_matmul": "runs on the fp32 vector peak unless the target allows TF32",
    "latency": "device_s is a kernel's time on the device (roofline: max(compute_s, memory_s)); the wall time "
               "(latency_s) is the host issue queue of the execution mode (graph | eager | compiled) over the "
               "device times; a node's latency_s is the wall time it adds; unknown nodes are excluded, never zero",
    "weights": "weight_bytes counts every parameter, buffer and constant the model holds; activations apart",
    "memory": "memory_needed_bytes = weight_bytes + peak_activation_bytes; fits compares it with the target's "
              "memory_gb * 1e9 (None when the target states no memory_gb); latency_s of a model that does not "
              "fit is the time of the work alone, labelled 'does not fit'",
    "alignment": "a GEMM dimension is misaligned when the row stride it sets (its size times the element size) is "
                 "not a multiple of 16 bytes; operands with a single row have no stride (graphperf/alignment.py)",
}


@dataclass(slots=True)
class NodeRecord:
    """One node's row of the report: identity, shapes, counts and times (counts and times None for an unknown node)."""

    name: str
    op: str
    source_op: str
    module: str
    dtype: str
    inputs: list[str]
    outputs: list[str]
    flops: Optional[int]
    matrix_flops: Optional[int]
    transcendentals: Optional[int]
    bytes_read: Optional[int]
    bytes_written: Optional[int]
    intensity: Optional[float]  # flops per byte moved
    compute_s: Optional[float]
    memory_s: Optional[float]
    latency_s: Optional[float]
    bound: str
    matrix_dtype: str = ""
    unknown_reason: str = ""
    device_s: Optional[float] = None  # kernel time on the device (0 for free nodes)
    host_s: Optional[float] = None  # host time to issue the node in the report's execution mode
    start_s: Optional[float] = None  # when the device starts the node, from the start of the run
    peak: Any = field(default=None, repr=False)  # the typed `graphperf.peaks.PeakUsed`; not serialized


#: The fields of a `NodeRecord` that the JSON node records, the CSV columns and `to_pandas` hold (all but `peak`,
#: whose text is `matrix_dtype`).
SERIALIZED_FIELDS = tuple(f.name for f in fields(NodeRecord) if f.name != "peak")
