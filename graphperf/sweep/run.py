"""Run a sweep: split the grid into groups (graphperf/sweep/grid.py: one captured graph, mode, base target and
structure each), project each group's points in chunks as columns (graphperf/sweep/vector.py: the rates come
from the arrays of swept values, no Target per point), and journal each finished chunk as one file next to the
output, so an interrupted sweep resumes where it stopped and loses or repeats no point. At the end the table is
written in grid order (CSV or Parquet) and the journal removed; the same spec always gives the same table.

Guarantees: a point's key is a hash of its axis values (`grid.point_key`); the journal is a folder
``OUTPUT.journal`` of ``.npz`` files, each the keys and figures of one finished chunk, written under a temporary
name and renamed, so a kill leaves whole chunks only (a leftover temporary file is removed); a resumed sweep
evaluates only the keys the journal lacks; the table has exactly the columns: the axes in spec order, ``key``,
then `evaluate.COLUMNS`. The compiled modes (whose fused graph depends on the target) and graphs the vector
projection does not cover are projected one point at a time, with the same columns.
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..errors import UsageError
from .evaluate import COLUMNS, evaluate, prepare
from .grid import Grid, hex_keys, point_key
from .spec import SHAPE_AXES, SweepSpec
from .table import SweepTable, write_table

__all__ = ["point_key", "run_sweep", "read_table", "CHUNK_POINTS", "Task"]

#: Points per task: a worker projects them as arrays of this length.
CHUNK_POINTS = 50_000


@dataclass(frozen=True)
class Task:
    """One chunk of one group: the group's shape, mode, target and fixed target fields, the vector axes' fields
    and values, and the chunk's points `j` (indices in the cross product of the vector axes)."""

    shape: tuple
    mode: str
    target: str
    fixed: tuple
    fields: tuple
    values: tuple
    j: Any

    @property
    def group(self) -> tuple:
        return self.shape, self.target, self.fixed


_MEMO: dict[tuple, Any] = {}  # per process: prepared graphs, base targets, plans (a worker keeps them across tasks)


def _memo(key: tuple, make: Callable[[], Any]) -> Any:
    if key not in _MEMO:
        _MEMO[key] = make()
    return _MEMO[key]


def evaluate_chunk(task: Task, cache: Optional[str]) -> dict[str, np.ndarray]:
    """The `COLUMNS` of `task`'s points, as arrays (a task of the executor: it runs in a worker process)."""
    from ..execution import FUSED_MODES
    from ..target import load_target
    from . import vector

    prep = _memo(("prep", task.shape, cache), lambda: prepare(dict(task.shape), cache))
    base = _memo(("target", task.target, task.fixed),
                 lambda: load_target(task.target).with_overrides(**dict(task.fixed)))
    n = len(task.j)
    idx = np.unravel_index(task.j, [len(v) for v in task.values]) if task.fields else ()
    arrays = {f: np.array(v, dtype=np.float64)[i] for f, v, i in zip(task.fields, task.values, idx)}
    variants = vector.Variants(base, arrays, n)
    if task.mode not in FUSED_MODES:
        plan = _memo(("plan", task.group, cache), lambda: vector.plan(prep.graph, prep.counts, variants))
        if plan is not None:
            return _columns(prep, variants, vector.evaluate(plan, variants, task.mode))
    rows = []
    for p in range(n):  # one Target per point: the compiled modes, a graph with tiled nodes
        target = base.with_overrides(**{f: v[i[p]] for f, v, i in zip(task.fields, task.values, idx)})
        rows.append(evaluate(prep, target, task.mode))
    return {c: np.array([r[c] for r in rows]) for c in COLUMNS}


def _columns(prep, variants, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A chunk's `COLUMNS` from its queue totals, the shape's work and the memory fit of each distinct
    memory_gb (`report.memory_fit`, once per value)."""
    from ..report.memory_fit import memory_fit

    n = variants.count
    fit = lambda gb: memory_fit(prep.work["weight_bytes"], prep.work["peak_activation_bytes"], gb)  # noqa: E731
    gb = variants.memory_gb
    if isinstance(gb, np.ndarray):
        distinct, inverse = np.unique(gb, return_inverse=True)
        fits = np.array([fit(float(g))["fits"] for g in distinct])[inverse]
        needed = fit(float(distinct[0]))["memory_needed_bytes"]
    else:
        whole = fit(gb)
        fits, needed = np.full(n, whole["fits"], dtype=bool if whole["fits"] is not None else object), whole["memory_needed_bytes"]
    cols = {k: out[k] for k in ("latency_s", "device_s", "host_s", "idle_s", "kernels", "launch_bound")}
    cols |= {k: np.full(n, prep.work[k]) for k in ("flops", "matrix_flops", "bytes", "weight_bytes",
                                                   "peak_activation_bytes", "coverage")}
    return {**cols, "memory_needed_bytes": np.full(n, needed), "fits": fits}


def _tasks(grid: Grid, todo: dict[tuple, np.ndarray], chunk: int) -> list[tuple[tuple, Task]]:
    names = grid.names
    fields = tuple(names[i].removeprefix("target.") for i in grid.vector)
    values = tuple(tuple(grid.values[i]) for i in grid.vector)
    out = []
    for g, j in todo.items():
        at = grid.group_values(g)
        shape = tuple((k, at[k]) for k in SHAPE_AXES if k in at)
        fixed = tuple((k.removeprefix("target."), v) for k, v in at.items() if k.startswith("target."))
        for s in range(0, len(j), chunk):
            out.append((g, Task(shape, str(at.get("mode", "graph")), str(at.get("target", "h100")), fixed, fields,
                                values, j[s:s + chunk])))
    return out


def _read_journal(folder: str) -> list[dict[str, np.ndarray]]:
    chunks = []
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".npz") and not name.endswith(".tmp.npz"):
                try:
                    with np.load(path, allow_pickle=True) as data:
                        chunks.append({k: data[k] for k in data.files})
                    continue
                except (OSError, ValueError, zipfile.BadZipFile):  # unreadable: its points are evaluated again
                    pass
            os.remove(path)  # a chunk file a kill caught before its rename
    return chunks


def run_sweep(spec: SweepSpec, output: str, jobs: int = 1, cache: Optional[str] = None,
              progress: Optional[Callable[[int, int], None]] = None,
              chunk_points: Optional[int] = None, executor: str = "local",
              address: Optional[str] = None) -> SweepTable:
    """Evaluate every point of `spec` not already in `output`'s journal, write `output` (.csv or .parquet) in
    grid order, and return the table. `executor` "local": `jobs` worker processes (1: in this process); "ray":
    tasks on the Ray cluster at `address` (None: a local instance with `jobs` CPUs, started and stopped here).
    `chunk_points` points per task (default `CHUNK_POINTS`)."""
    if executor not in ("local", "ray"):
        raise UsageError(f"--executor {executor!r}: choose local or ray")
    fmt = os.path.splitext(output)[1].lower()
    if fmt not in (".csv", ".parquet"):
        raise UsageError(f"-o {output}: a sweep table is written as .csv or .parquet")
    journal = output + ".journal"
    grid = Grid(spec.axes)
    done = _read_journal(journal)
    done_keys = np.unique(np.concatenate([c["key"] for c in done])) if done else np.zeros(0, np.uint64)
    todo: dict[tuple, np.ndarray] = {}
    every = np.arange(grid.group_points)
    for g in grid.groups():
        j = every[~np.isin(grid.keys(g, every), done_keys)] if len(done_keys) else every
        if len(j):
            todo[g] = j
    tasks = _tasks(grid, todo, chunk_points or CHUNK_POINTS)
    finished = grid.points - sum(len(j) for j in todo.values())
    os.makedirs(journal, exist_ok=True)

    def record(g: tuple, task: Task, cols: dict[str, np.ndarray]) -> None:
        nonlocal finished
        chunk = {"key": grid.keys(g, task.j), **cols}
        path = os.path.join(journal, f"{len(done):06d}-{os.urandom(6).hex()}")
        np.savez(path + ".tmp.npz", **chunk)
        os.replace(path + ".tmp.npz", path + ".npz")  # whole chunks only: a kill before this leaves a .tmp.npz
        done.append(chunk)
        finished += len(task.j)
        if progress is not None:
            progress(finished, grid.points)

    if progress is not None:
        progress(finished, grid.points)
    if executor == "ray" or jobs > 1:  # capture each shape once, here: the workers read the disk cache
        for shape in dict.fromkeys(task.shape for _, task in tasks):
            prepare(dict(shape), cache)
    if executor == "ray":
        _run_on_ray(tasks, cache, jobs, address, record)
    elif jobs <= 1:
        for g, task in tasks:
            record(g, task, evaluate_chunk(task, cache))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(evaluate_chunk, task, cache): (g, task) for g, task in tasks}
            for future in as_completed(futures):
                record(*futures[future], future.result())
    table = _assemble(spec, grid, done)
    write_table(table, output, fmt)
    for name in os.listdir(journal):
        os.remove(os.path.join(journal, name))
    os.rmdir(journal)
    return table


def _assemble(spec: SweepSpec, grid: Grid, chunks: list[dict[str, np.ndarray]]) -> SweepTable:
    """The table in grid order: the axes, the keys, and each point's figures found by key among the chunks."""
    keys = np.concatenate([c["key"] for c in chunks]) if chunks else np.zeros(0, np.uint64)
    order = np.argsort(keys, kind="stable")
    wanted = grid.all_keys()
    at = np.searchsorted(keys[order], wanted)
    if len(wanted) and (at.max() >= len(keys) or (keys[order][at] != wanted).any()):
        raise RuntimeError("the journal lacks points of the grid")  # never: every task was recorded
    take = order[at]
    columns = {name: grid.column(i) for i, name in enumerate(grid.names)}
    columns["key"] = hex_keys(wanted)
    for c in COLUMNS:
        parts = [chunk.pop(c) for chunk in chunks]  # each chunk's copy freed as its column is merged
        merged = np.concatenate(parts) if len({p.dtype for p in parts}) == 1 else np.concatenate(
            [p.astype(object) for p in parts])
        columns[c] = merged[take]
    return SweepTable(columns)


def _run_on_ray(tasks, cache, jobs: int, address: Optional[str], record) -> None:
    """Each task a Ray task (retried if its worker dies); chunks are recorded as tasks finish, in any order."""
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs ray: pip install ray (or use --executor local)") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else jobs, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(max_retries=3, retry_exceptions=False)(evaluate_chunk)
        pending = {remote.remote(task, cache): (g, task) for g, task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            record(*pending.pop(ready[0]), ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()


def read_table(path: str) -> list[dict[str, Any]]:
    """A written sweep table as rows (CSV cells as text; Parquet typed)."""
    from .table import read_rows

    return read_rows(path)
