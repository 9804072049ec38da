"""A sweep spec: a TOML file whose ``[axes]`` table names the grid; the cross product of the axes is the set of
points, in the order the axes are written (the last axis varies fastest).

    [axes]
    workload = ["llama3-8b", "gpt2"]          # workload names (graphperf models) or .onnx/.pt2 paths
    phase = ["decode"]
    batch = [1, 32]
    kv_len = [2048]
    target = ["h100"]                          # bundled names or .toml paths
    "target.hbm_gbps" = {start = 1000, stop = 8000, step = 250}   # any field --set takes; the range is inclusive

Axes: ``workload`` (required), ``config``, ``phase``, ``batch``, ``seq``, ``kv_len``, ``dtype``, ``attention``,
``mode``, ``target`` (default ``h100``) and ``target.FIELD``. A value is a list, one scalar, or an inclusive
range ``{start, stop, step}``. Every mistake is a one-line `UsageError` naming the key and the file, raised
before any work: an unknown axis or field, an unknown workload or target, a field value --set refuses (each
distinct value checked once), an empty list or range, a step of the wrong sign or zero, more points than
``max_points``.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import UsageError

__all__ = ["SHAPE_AXES", "AXES", "SweepSpec", "load_spec", "parse_spec", "DEFAULT_MAX_POINTS"]

#: Axes that shape the captured graph (one capture per distinct combination).
SHAPE_AXES = ("workload", "config", "phase", "batch", "seq", "kv_len", "dtype", "attention")
#: Every axis a spec may name besides ``target.FIELD``.
AXES = (*SHAPE_AXES, "mode", "target")
DEFAULT_MAX_POINTS = 10_000_000
_INT_AXES = ("batch", "seq", "kv_len")


@dataclass(frozen=True)
class SweepSpec:
    """The axes in file order, each with its list of values, where they came from (`source`, for errors), and
    the Pareto fronts the HTML page draws: pairs of columns, both minimized (``[report] pareto``; default: each
    numeric ``target.FIELD`` axis against ``latency_s``)."""

    axes: dict[str, list[Any]]
    source: str
    pareto: tuple[tuple[str, str], ...] = ()

    @property
    def points(self) -> int:
        """How many points the grid holds (the product of the axes' lengths)."""
        return math.prod(len(v) for v in self.axes.values())

    def iter_points(self) -> Iterator[dict[str, Any]]:
        """Every point as {axis: value}, the last axis varying fastest."""
        names = list(self.axes)
        for combo in itertools.product(*self.axes.values()):
            yield dict(zip(names, combo))


def load_spec(path: str, max_points: int = DEFAULT_MAX_POINTS) -> SweepSpec:
    """Read and check the spec at `path` (one-line UsageError for a missing, unreadable or invalid file)."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such sweep spec; write a TOML file with an [axes] table (README: 'Sweeps')")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a valid TOML sweep spec ({exc})") from None
    return parse_spec(data, path, max_points)


def parse_spec(data: dict[str, Any], source: str = "<spec>", max_points: int = DEFAULT_MAX_POINTS) -> SweepSpec:
    """Check a spec already read from TOML; see the module docstring."""
    from ..target import _SCALARS, IDENTITY_FIELDS  # the fields --set takes

    extra = sorted(set(data) - {"axes", "report"})
    if extra:
        raise UsageError(f"{source}: unknown table or key {extra[0]!r}; a sweep spec has an [axes] and a [report] "
                         "table")
    axes_in = data.get("axes")
    if not isinstance(axes_in, dict) or not axes_in:
        raise UsageError(f"{source}: no [axes] table; name at least `workload = [...]`")
    axes: dict[str, list[Any]] = {}
    for key, raw in axes_in.items():
        where = f"{source}: axes.{key}"
        if key.startswith("target."):
            field = key.removeprefix("target.")
            if field not in _SCALARS or field in IDENTITY_FIELDS:
                from ..target import _suggest

                raise UsageError(f"{where}: {field!r} is not a target field --set takes{_suggest(field)}")
        elif key not in AXES:
            raise UsageError(f"{where}: unknown axis; axes: {', '.join(AXES)}, target.FIELD")
        values = _values(raw, where)
        if key in _INT_AXES and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise UsageError(f"{where}: values must be integers >= 1, got {values[:5]}")
        axes[key] = values
    if "workload" not in axes:
        raise UsageError(f"{source}: the [axes] table needs a workload axis (workload names or model files)")
    axes.setdefault("target", ["h100"])
    _check_names(axes, source)
    spec = SweepSpec(axes, source, _pareto(data.get("report", {}), axes, source))
    if spec.points > max_points:
        raise UsageError(f"{source}: the grid holds {spec.points:,} points, above --max-points {max_points:,}; "
                         "narrow the axes or raise --max-points")
    return spec


def _pareto(report: Any, axes: dict[str, list[Any]], source: str) -> tuple[tuple[str, str], ...]:
    from .evaluate import COLUMNS

    if not isinstance(report, dict) or set(report) - {"pareto"}:
        raise UsageError(f"{source}: [report] takes one key, pareto = [[\"COLUMN\", \"COLUMN\"], ...]")
    numeric = [k for k in axes if k.startswith("target.")
               and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in axes[k])]
    fronts = report.get("pareto", [[k, "latency_s"] for k in numeric])
    known = {*axes, *COLUMNS}
    for front in fronts:
        if not (isinstance(front, list) and len(front) == 2 and all(c in known for c in front)):
            raise UsageError(f"{source}: report.pareto: {front!r} is not a pair of columns (axes or "
                             f"{', '.join(COLUMNS)}), both minimized")
    return tuple(tuple(f) for f in fronts)


def _values(raw: Any, where: str) -> list[Any]:
    if isinstance(raw, dict):
        missing = [k for k in ("start", "stop", "step") if k not in raw]
        if missing or set(raw) - {"start", "stop", "step"}:
            raise UsageError(f"{where}: a range is {{start, stop, step}}, got keys {sorted(raw)}")
        start, stop, step = raw["start"], raw["stop"], raw["step"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop, step)):
            raise UsageError(f"{where}: start, stop and step must be numbers")
        if step == 0 or (stop - start) * step < 0:
            raise UsageError(f"{where}: step {step} never goes from {start} to {stop}; give a step of the sign "
                             "of stop - start")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        whole = all(isinstance(v, int) for v in (start, stop, step))
        return [start + i * step if whole else round(start + i * step, 12) for i in range(count)]
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise UsageError(f"{where}: an empty list gives no points")
    return values


def _check_names(axes: dict[str, list[Any]], source: str) -> None:
    from .. import models
    from ..execution import MODES
    from ..target import _SCALARS, EFFICIENCY_FIELDS, load_target

    names = {m.name for m in models.list_models()}
    for w in axes["workload"]:
        if not (isinstance(w, str) and (w in names or os.path.isfile(w))):
            raise UsageError(f"{source}: axes.workload: {w!r} is neither a workload ({', '.join(sorted(names))}) "
                             "nor a model file")
    targets = []
    for t in axes["target"]:
        try:
            targets.append(load_target(str(t)))
        except UsageError as exc:
            raise UsageError(f"{source}: axes.target: {exc}") from None
    for key, values in axes.items():  # each distinct value of each field once, as --set checks it
        if key.startswith("target."):
            if any(isinstance(v, (list, dict)) for v in values):
                raise UsageError(f"{source}: axes.{key}: a value is a number, true/false or a string")
            field = key.removeprefix("target.")
            if _SCALARS[field][0] is float and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):  # numbers: the range check, on an array
                arr = np.array(values, dtype=np.float64)
                ok = np.isfinite(arr) & (arr > 0) & ((arr <= 1) if field in EFFICIENCY_FIELDS else True)
                values = [values[int(np.argmin(ok))]] if not ok.all() else []  # the first bad value, for its message
            for value in dict.fromkeys(values):
                for target in targets:
                    try:
                        target.with_overrides(**{key.removeprefix("target."): value})
                    except UsageError as exc:
                        raise UsageError(f"{source}: axes.{key}: {value!r}: {exc}") from None
    for m in axes.get("mode", ()):
        if m not in MODES:
            raise UsageError(f"{source}: axes.mode: {m!r}; choose from {', '.join(MODES)}")
