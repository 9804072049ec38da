"""`graphperf sweep`: a design-space grid (spec.py) projected with the functions `graphperf analyze` uses
(evaluate.py), one capture per shape cached on disk; the grid split into groups and chunks of points as arrays
(grid.py), projected columnar over target variants (vector.py), journaled per chunk and resumable (run.py), written
from columns (table.py)."""

from .evaluate import COLUMNS
from .grid import point_key
from .run import read_table, run_sweep
from .spec import load_spec, parse_spec
from .table import SweepTable

__all__ = ["COLUMNS", "SweepTable", "load_spec", "parse_spec", "point_key", "read_table", "run_sweep"]
