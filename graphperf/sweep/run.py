"""Run a sweep: group the grid's points by the graph they need (one capture per shape), evaluate every point,
and stream each finished row to a journal next to the output, so an interrupted sweep resumes where it
stopped and loses or repeats no point. At the end the table is written in grid order (CSV or Parquet) and the
journal removed; the same spec always gives the same table.

Guarantees: a point's key is a hash of its axis values; a resumed sweep evaluates only the keys the journal
lacks (a torn last line, from a kill mid-write, is dropped and that point evaluated again); rows come back
with exactly the columns: the axes in spec order, ``key``, then `evaluate.COLUMNS`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterable, Optional

from ..errors import UsageError
from .evaluate import COLUMNS, evaluate, figures_of, prepare
from .spec import SHAPE_AXES, SweepSpec

__all__ = ["point_key", "run_sweep", "read_table", "CHUNK_POINTS"]

#: Points per task: a task loads its graph from the disk cache once, then projects its points.
CHUNK_POINTS = 4000


def point_key(point: dict[str, Any]) -> str:
    """A stable id of a point: the hash of its axis values."""
    return hashlib.sha256(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _split(point: dict[str, Any]) -> tuple[tuple, str, dict, str]:
    shape = tuple((k, point[k]) for k in SHAPE_AXES if k in point)
    overrides = {k.removeprefix("target."): v for k, v in point.items() if k.startswith("target.")}
    return shape, str(point.get("target", "h100")), overrides, str(point.get("mode", "graph"))


def evaluate_chunk(shape: tuple, points: list[dict[str, Any]], cache: Optional[str]) -> list[dict[str, Any]]:
    """The rows of `points`, which share `shape` (a task of the executor: it runs in a worker process). Points in
    the graph and eager modes are projected together, vectorized over their targets (graphperf/sweep/vector.py);
    the compiled modes, whose graph depends on the target, one at a time."""
    from ..execution import FUSED_MODES
    from ..target import load_target
    from . import vector

    prep = prepare(dict(shape), cache)
    bases: dict[str, Any] = {}
    targets = []
    splits = [_split(point) for point in points]
    for _, name, overrides, _ in splits:
        if name not in bases:
            bases[name] = load_target(name)
        targets.append(bases[name].with_overrides(**overrides) if overrides else bases[name])
    figures: list[Optional[dict[str, Any]]] = [None] * len(points)
    batches: dict[tuple, list[int]] = {}
    plans: dict[tuple, Any] = {}
    first_plan: dict[str, Any] = {}
    for i, point in enumerate(points):
        mode = splits[i][3]
        if mode in FUSED_MODES:
            figures[i] = evaluate(prep, targets[i], mode)
            continue
        p = first_plan.get(mode) or first_plan.setdefault(mode, vector.plan(prep.graph, prep.counts, targets[i]))
        if p is None:  # a graph the vectorized projection does not cover: one at a time
            figures[i] = evaluate(prep, targets[i], mode)
            continue
        key = (mode, vector.structure(targets[i], p.key[1]))
        if key[1] != p.key[0] and key not in plans:
            plans[key] = vector.plan(prep.graph, prep.counts, targets[i])
        plans.setdefault(key, p)
        batches.setdefault(key, []).append(i)
    for (mode, _), idx in batches.items():
        out = vector.evaluate(plans[(mode, _)], [targets[i] for i in idx], mode)
        for j, i in enumerate(idx):
            figures[i] = figures_of(prep, targets[i], {k: out[k][j].item() for k in out})
    return [{**point, "key": point_key(point), **f} for point, f in zip(points, figures)]



def _journal_rows(path: str) -> list[dict[str, Any]]:
    rows = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line torn by a kill mid-write: evaluate that point again
                    continue
    return rows


def run_sweep(spec: SweepSpec, output: str, jobs: int = 1, cache: Optional[str] = None,
              progress: Optional[Callable[[int, int], None]] = None,
              chunk_points: Optional[int] = None, executor: str = "local",
              address: Optional[str] = None) -> list[dict[str, Any]]:
    """Evaluate every point of `spec` not already in `output`'s journal, write `output` (.csv or .parquet) in
    grid order, and return the rows. `executor` "local": `jobs` worker processes (1: in this process); "ray":
    tasks on the Ray cluster at `address` (None: a local instance with `jobs` CPUs, started and stopped here).
    `chunk_points` points per task (default `CHUNK_POINTS`)."""
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor {executor!r}: choose local or ray")
    fmt = os.path.splitext(output)[1].lower()
    if fmt not in (".csv", ".parquet"):
        raise UsageError(f"-o {output}: a sweep table is written as .csv or .parquet")
    journal = output + ".journal.jsonl"
    points = list(spec.iter_points())
    done = {r["key"]: r for r in _journal_rows(journal)}
    todo: dict[tuple, list[dict[str, Any]]] = {}
    for p in points:
        if point_key(p) not in done:
            todo.setdefault(_split(p)[0], []).append(p)
    chunk = chunk_points or CHUNK_POINTS
    tasks = [(shape, pts[i:i + chunk]) for shape, pts in todo.items() for i in range(0, len(pts), chunk)]
    finished = len(points) - sum(len(p) for p in todo.values())
    with open(journal, "a", encoding="utf-8") as out:
        out.write("")  # a torn last line stays torn: the next line starts fresh below
        def record(rows: Iterable[dict[str, Any]]) -> None:
            nonlocal finished
            for row in rows:
                out.write("\n" + json.dumps(row))
                done[row["key"]] = row
                finished += 1
            out.flush()
            if progress is not None:
                progress(finished, len(points))

        if progress is not None:
            progress(finished, len(points))
        if executor == "ray" or jobs > 1:  # capture each shape once, here: the workers read the disk cache
            for shape in dict.fromkeys(shape for shape, _ in tasks):
                prepare(dict(shape), cache)
        if executor == "ray":
            _run_on_ray(tasks, cache, jobs, address, record)
        elif jobs <= 1:
            for shape, pts in tasks:
                record(evaluate_chunk(shape, pts, cache))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for future in as_completed([pool.submit(evaluate_chunk, shape, pts, cache) for shape, pts in tasks]):
                    record(future.result())
    rows = [done[point_key(p)] for p in points]
    columns = [*spec.axes, "key", *COLUMNS]
    _write(rows, columns, output, fmt)
    os.remove(journal)
    return rows


def _run_on_ray(tasks, cache, jobs: int, address: Optional[str], record) -> None:
    """Each task a Ray task (retried if its worker dies); rows are recorded as tasks finish, in any order."""
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs ray: pip install ray (or use --executor local)") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else jobs, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(max_retries=3, retry_exceptions=False)(evaluate_chunk)
        pending = [remote.remote(shape, pts, cache) for shape, pts in tasks]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            record(ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()


def _write(rows: list[dict[str, Any]], columns: list[str], output: str, fmt: str) -> None:
    tmp = output + ".tmp"
    if fmt == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UsageError("-o *.parquet needs pyarrow: pip install pyarrow (or write .csv)") from None
        pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows]), tmp)
    else:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, output)


def read_table(path: str) -> list[dict[str, Any]]:
    """A written sweep table as rows (CSV cells as text; Parquet typed)."""
    if path.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
