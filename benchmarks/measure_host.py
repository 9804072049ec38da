"""Measure this machine for the `host` target (graphperf/targets/host.toml).

Superseded by `graphperf calibrate`, which this script now runs: the host target is measured on
1 thread (what `graphperf profile` uses by default), with min / median / max of every figure and
a warning when a spread is too wide to trust. Until 2026-11-24 this script measured with torch on
all threads (2 here: float32 matmul 184.5 GFLOP/s against about 90 on 1 thread), which made the
host projections about half the single-thread onnxruntime times.

Run:  .venv/bin/python benchmarks/measure_host.py [--threads 1] [--repeats 15] [-o graphperf/targets/host.toml]
(any `graphperf calibrate` option passes through; see `graphperf calibrate --help`).
"""

from __future__ import annotations

import sys

from graphperf.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate", *(sys.argv[1:] or ["--threads", "1", "--repeats", "15"])]))
