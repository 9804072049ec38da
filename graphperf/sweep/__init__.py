"""`graphperf sweep`: a design-space grid (spec.py) projected point by point with the functions `graphperf
analyze` uses (evaluate.py), one capture per shape cached on disk, resumable (run.py)."""

from .evaluate import COLUMNS
from .run import read_table, run_sweep
from .spec import load_spec, parse_spec

__all__ = ["COLUMNS", "load_spec", "parse_spec", "read_table", "run_sweep"]
