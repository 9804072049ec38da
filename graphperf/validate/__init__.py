"""`graphperf validate`: projections against the published measurements of reference/measurements.json.

`validate_records(records)` maps each record's hardware to a bundled target, rebuilds its workload
(GEMM, attention, elementwise/norm, STREAM copy, one LLM decode step), projects it (plain roofline,
graphperf's default efficiency model, that model with tiling, and with every fusion rule) and reports the error per
category; records it cannot run are listed with the reason.
"""

from .hardware import map_hardware
from .run import MODELS, ValidationResult, default_reference, load_records, render_markdown, validate_records
from .workloads import Case, Skip, build_case

__all__ = ["MODELS", "Case", "Skip", "ValidationResult", "build_case", "default_reference", "load_records",
           "map_hardware", "render_markdown", "validate_records"]
