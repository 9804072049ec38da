"""`graphperf sweep` (issue 15): a spec's grid, one row per point whose figures equal `graphperf analyze`'s for the
same workload, shape, mode and --set values; CSV and Parquet; a sweep killed mid-way resumes and loses or repeats
no point; bad specs are one line naming the key, before any work."""

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

import graphperf
from graphperf.cli import main
from graphperf.sweep import load_spec, read_table, run_sweep
from graphperf.sweep.run import point_key

SPEC = """
[axes]
workload = ["gpt2", "llama3-8b"]
config = ["tiny"]
phase = ["decode"]
batch = [1, 8]
kv_len = [128]
mode = ["graph", "eager"]
target = ["h100", "a100"]
"target.hbm_gbps" = {start = 1000, stop = 3000, step = 1000}
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return str(path)


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def test_every_point_equals_analyze(tmp_path, spec_file, cache):
    spec = load_spec(spec_file)
    assert spec.points == 2 * 2 * 2 * 2 * 3
    rows = run_sweep(spec, str(tmp_path / "t.csv"), cache=cache)
    assert len({r["key"] for r in rows}) == len(rows) == spec.points
    for row in rows[::7]:
        report = graphperf.analyze(row["workload"], config="tiny", phase="decode", batch=row["batch"], kv_len=128,
                                   mode=row["mode"], target=graphperf.load_target(row["target"]).with_overrides(
                                       hbm_gbps=row["target.hbm_gbps"]))
        for column in ("latency_s", "device_s", "host_s", "kernels", "flops", "bytes", "peak_activation_bytes"):
            assert row[column] == report.totals[column], (row["key"], column)
    table = read_table(str(tmp_path / "t.csv"))
    assert list(table[0])[:len(spec.axes) + 1] == [*spec.axes, "key"] and float(table[0]["latency_s"]) == rows[0]["latency_s"]


def test_parquet_reads_back_with_pandas_and_equals_the_csv(tmp_path, spec_file, cache):
    import pandas

    spec = load_spec(spec_file)
    run_sweep(spec, str(tmp_path / "t.csv"), cache=cache)
    run_sweep(spec, str(tmp_path / "t.parquet"), cache=cache, jobs=2)  # and the process pool agrees
    frame = pandas.read_parquet(tmp_path / "t.parquet")
    csv = pandas.read_csv(tmp_path / "t.csv")
    assert list(frame.columns) == list(csv.columns) and len(frame) == spec.points
    assert (frame["latency_s"] == csv["latency_s"]).all() and (frame["key"] == csv["key"]).all()


def _journal_points(journal):
    """Points in the finished chunk files of a journal folder."""
    import numpy as np

    names = [n for n in os.listdir(journal) if n.endswith(".npz") and not n.endswith(".tmp.npz")] if os.path.isdir(
        journal) else []
    return sum(len(np.load(os.path.join(journal, n))["key"]) for n in names)


def test_a_torn_chunk_file_is_evaluated_again_and_no_point_repeats(tmp_path, spec_file, cache):
    spec = load_spec(spec_file)
    out = str(tmp_path / "t.csv")
    clean = run_sweep(spec, str(tmp_path / "clean.csv"), cache=cache).rows()

    calls = []

    def stop_after_two_chunks(done, total):
        calls.append(done)  # the first call: before any chunk
        if len(calls) == 3:
            raise KeyboardInterrupt  # a kill right after the second chunk's file was renamed into place

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, cache=cache, chunk_points=5, progress=stop_after_two_chunks)
    journal = out + ".journal"
    assert 0 < _journal_points(journal) == calls[-1] < spec.points and not os.path.exists(out)
    with open(os.path.join(journal, "000002-torn.tmp.npz"), "wb") as fh:  # a third chunk killed while written
        fh.write(b"PK\x03\x04 torn")
    evaluated = []
    rows = run_sweep(spec, out, cache=cache, progress=lambda done, total: evaluated.append(done))
    assert evaluated[0] == calls[-1] and rows.rows() == clean and not os.path.exists(journal)


def test_a_sweep_killed_mid_way_resumes_without_loss_or_duplicates(tmp_path, cache):
    # enough points (3,216 in chunks of 2) that the sweep cannot finish between the poll that sees 4 of them and
    # the kill, even with every capture cached (with SPEC's 48 it sometimes did, and the kill found it done)
    spec_file = tmp_path / "kill.toml"
    spec_file.write_text(SPEC.replace("step = 1000}", "step = 10}"))
    spec_file = str(spec_file)
    assert load_spec(spec_file).points == 3216
    out = str(tmp_path / "t.csv")
    command = [sys.executable, "-m", "graphperf", "sweep", spec_file, "-o", out, "--jobs", "2", "--cache-dir", cache,
               "--chunk-points", "2"]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out + ".journal"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if _journal_points(journal) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-500:]  # still running: the kill lands mid-sweep
    os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers
    proc.wait()
    before = _journal_points(journal)
    assert 4 <= before < load_spec(spec_file).points and not os.path.exists(out)
    assert main(["sweep", spec_file, "-o", out, "--cache-dir", cache]) == 0
    table = read_table(out)
    clean = run_sweep(load_spec(spec_file), str(tmp_path / "clean.csv"), cache=cache)
    assert [r["key"] for r in table] == [point_key({k: r[k] for k in load_spec(spec_file).axes}) for r in clean]
    assert [float(r["latency_s"]) for r in table] == [r["latency_s"] for r in clean]


@pytest.mark.parametrize("body,message", [
    ('[axes]\nworkload = ["gpt2"]\nbatchh = [1]', r"axes\.batchh: unknown axis"),
    ('[axes]\nworkload = ["gpt2"]\n"target.hbm_gbs" = [1]', r"axes\.target\.hbm_gbs: 'hbm_gbs' is not a target field"),
    ('[axes]\nworkload = ["gpt3"]', r"axes\.workload: 'gpt3' is neither a workload"),
    ('[axes]\nworkload = ["gpt2"]\nbatch = []', r"axes\.batch: an empty list gives no points"),
    ('[axes]\nworkload = ["gpt2"]\n"target.hbm_gbps" = {start = 10, stop = 1, step = 1}', r"step 1 never goes"),
    ('[axes]\nworkload = ["gpt2"]\n"target.hbm_gbps" = {start = 1, stop = 10, step = 0}', r"step 0 never goes"),
    ('[axes]\nbatch = [1]', r"needs a workload axis"),
    ('[axes]\nworkload = ["gpt2"]\ntarget = ["h1000"]', r"h1000"),
    ('[axes]\nworkload = ["gpt2"]\n"target.label" = ["x"]', r"'label' is not a target field"),
    ('[axes]\nworkload = ["gpt2"]\n"target.hbm_gbps" = {start = 1, stop = 1000000, step = 1}', r"above --max-points"),
    ('[axes]\nworkload = ["gpt2"\n', r"not a valid TOML sweep spec"),
    ('[axes]\nworkload = ["gpt2"]\n"target.memory_efficiency" = [0.5, 1.5, 0.7]', r"axes\.target\.memory_efficiency: 1\.5"),
    ('[axes]\nworkload = ["gpt2"]\n"target.hbm_gbps" = [3000, "fast"]', r"axes\.target\.hbm_gbps: 'fast'"),
    ('[axes]\nworkload = ["gpt2"]\n"target.compute_units" = [66, 0]', r"axes\.target\.compute_units: 0"),
])
def test_bad_specs_are_one_line_naming_the_key(tmp_path, capsys, body, message):
    import re

    path = tmp_path / "bad.toml"
    path.write_text(body)
    assert main(["sweep", str(path), "-o", str(tmp_path / "t.csv"), "--max-points", "1000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "t.csv").exists()


def _ray_workers_running(task: str) -> list[int]:
    """PIDs of Ray workers executing `task` (Ray titles a busy worker's process "ray::TASK")."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if fh.read().startswith(f"ray::{task}".encode()):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_ray_and_local_executors_agree_and_a_killed_ray_worker_loses_nothing(tmp_path, spec_file, cache):
    """A local Ray instance (2 CPUs), started by the sweep; one worker is killed while it runs a task: Ray runs
    the task again, and the table has every point once, equal to the local executor's."""
    import threading

    spec = load_spec(spec_file)
    local = run_sweep(spec, str(tmp_path / "local.csv"), cache=cache)
    killed = []

    def kill_one_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            pids = _ray_workers_running("evaluate_chunk")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_one_worker, daemon=True)
    watcher.start()
    rows = run_sweep(spec, str(tmp_path / "ray.csv"), cache=cache, jobs=2, executor="ray", chunk_points=3)
    watcher.join()
    assert killed, "no Ray worker was seen running a task"
    assert [r["key"] for r in rows] == [r["key"] for r in local] and len({r["key"] for r in rows}) == len(rows)
    assert read_table(str(tmp_path / "ray.csv")) == read_table(str(tmp_path / "local.csv"))
    assert rows.rows() == local.rows()


ANSWER_SPEC = """
[axes]
workload = ["llama3-8b"]
config = ["tiny"]
phase = ["decode"]
batch = [1, 64]
kv_len = [200]
target = ["h200"]
"target.hbm_gbps" = [2400, 3600, 4800, 6000]
"target.launch_overhead_us" = [0.7, 1.4, 2.8]

[report]
pareto = [["target.hbm_gbps", "latency_s"]]
"""


def test_the_page_holds_the_pareto_front_and_the_elasticities(tmp_path, cache):
    """The front is exactly the non-dominated points; each elasticity equals the central difference of two
    `graphperf.analyze` projections at the target's own value +-1%; the page loads in headless Chromium clean."""
    import math

    from tests.e2e.browser import Browser

    from graphperf.sweep.answers import STEP, elasticities, pareto_front

    spec_path = tmp_path / "study.toml"
    spec_path.write_text(ANSWER_SPEC)
    page = tmp_path / "study.html"
    assert main(["sweep", str(spec_path), "-o", str(tmp_path / "t.csv"), "--cache-dir", cache, "--html", str(page)]) == 0
    rows = read_table(str(tmp_path / "t.csv"))
    front = pareto_front(rows, "target.hbm_gbps", "latency_s")
    x, y = (lambda r: float(r["target.hbm_gbps"])), (lambda r: float(r["latency_s"]))
    dominated = [r for r in rows if any(x(o) <= x(r) and y(o) <= y(r) and (x(o), y(o)) != (x(r), y(r)) for o in rows)]
    assert {r["key"] for r in front} == {r["key"] for r in rows} - {r["key"] for r in dominated}
    spec = load_spec(str(spec_path))
    (row,) = elasticities(spec, cache)
    h200 = graphperf.load_target("h200")
    for knob, sign in (("hbm_gbps", -1), ("launch_overhead_us", 1)):  # more bandwidth: faster; longer gaps: slower
        t = [graphperf.analyze("llama3-8b", config="tiny", phase="decode", batch=1, kv_len=200,
                               target=h200.with_overrides(**{knob: getattr(h200, knob) * f})).totals["latency_s"]
             for f in (1 + STEP, 1 - STEP)]
        want = (math.log(t[0]) - math.log(t[1])) / (math.log(1 + STEP) - math.log(1 - STEP))
        assert row[f"target.{knob}"] == pytest.approx(want, rel=1e-9) and 0.0 < sign * want <= 1.0
    with Browser() as browser:
        shown = browser.open(str(page))
    assert not shown.problems and "Pareto front: latency_s against target.hbm_gbps" in shown.dom
    assert "d ln t / d ln target.launch_overhead_us" in shown.dom


MIXED_SPEC = """
[axes]
workload = ["llama3-8b"]
config = ["tiny"]
phase = ["decode"]
batch = [2]
kv_len = [64]
"target.memory_gb" = [0.000001, 80]
mode = ["graph", "eager", "compiled"]
target = ["h100"]
"target.compute_units" = [66, 132]
"target.kernel_floor_row_us" = ["none", 3.5]
"target.launch_overhead_us" = [1, 2.5]
"target.allow_tf32" = [true]
"""


def test_group_axes_and_per_point_modes_equal_one_target_per_point(tmp_path, cache):
    """Integer, boolean and `none` fields split the grid into groups; float fields vary inside a group as arrays;
    the compiled mode goes one point at a time; every row equals `evaluate` on that point's own Target."""
    from graphperf.sweep.evaluate import COLUMNS, evaluate, prepare

    path = tmp_path / "mixed.toml"
    path.write_text(MIXED_SPEC)
    spec = load_spec(str(path))
    rows = run_sweep(spec, str(tmp_path / "t.parquet"), cache=cache, chunk_points=3).rows()
    assert len(rows) == spec.points == 48 and {r["fits"] for r in rows} == {True, False}
    prep = prepare({"workload": "llama3-8b", "config": "tiny", "phase": "decode", "batch": 2, "kv_len": 64}, cache)
    h100 = graphperf.load_target("h100")
    for row in rows:
        sets = {k.removeprefix("target."): row[k] for k in spec.axes if k.startswith("target.")}
        want = evaluate(prep, h100.with_overrides(**sets), row["mode"])
        assert {c: row[c] for c in COLUMNS} == want, row
        assert row["key"] == point_key({k: row[k] for k in spec.axes})


def test_point_keys_hash_the_values_not_the_axis_order():
    """A key depends on each axis's name and value (an int and a float of equal value differ, as their JSON does),
    not on the order of the axes; the grid's vectorized keys equal `point_key` on each point."""
    import numpy as np

    from graphperf.sweep.grid import Grid, hex_keys

    assert point_key({"batch": 1, "target.hbm_gbps": 2.5}) == point_key({"target.hbm_gbps": 2.5, "batch": 1})
    assert len({point_key({"a": 1}), point_key({"a": 1.0}), point_key({"b": 1}), point_key({"a": "1"})}) == 4
    axes = {"workload": ["gpt2", "bert-base"], "target.hbm_gbps": [1000, 1500.5, 2e3], "mode": ["graph", "eager"],
            "target.launch_overhead_us": [0.5, 1]}
    grid = Grid(axes)
    assert [grid.names[i] for i in grid.vector] == ["target.hbm_gbps", "target.launch_overhead_us"]


    points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    assert hex_keys(grid.all_keys()).astype(str).tolist() == [point_key(p) for p in points]
    for g in grid.groups():
        j = np.arange(grid.group_points)
        pos = grid.positions(g, j)
        assert hex_keys(grid.keys(g, j)).astype(str).tolist() == [point_key(points[p]) for p in pos]
        assert all(points[p][k] == v for p in pos for k, v in grid.group_values(g).items())


def test_the_columnar_pareto_front_equals_the_row_by_row_one():
    """On a `SweepTable` the front is found on the columns: the same rows, in the same order, ties included."""
    import numpy as np

    from graphperf.sweep import SweepTable
    from graphperf.sweep.answers import pareto_front

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 60))
        table = SweepTable({"x": rng.integers(0, 8, n).astype(float), "y": rng.integers(0, 8, n).astype(float),
                            "i": np.arange(n)})
        assert pareto_front(table, "x", "y") == pareto_front(table.rows(), "x", "y")
