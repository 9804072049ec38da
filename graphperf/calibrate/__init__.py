"""`graphperf calibrate`: microbenchmarks that measure a machine into a target file (`cpu_bench`,
`cuda_bench`, `target_file`), and the fit of a target's efficiency factors to measured profiles
(`fit`). Every figure is a repeated `Measurement` with min / median / max and a spread flag."""

from .fit import Case, FitResult, evaluate, fit_target
from .measure import SPREAD_LIMIT, Measurement

__all__ = ["Measurement", "SPREAD_LIMIT", "Case", "FitResult", "fit_target", "evaluate"]
