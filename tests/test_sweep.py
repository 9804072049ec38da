"""`graphperf sweep` (issue 15): a spec's grid, one row per point whose figures equal `graphperf analyze`'s for the
same workload, shape, mode and --set values; CSV and Parquet; a sweep killed mid-way resumes and loses or repeats
no point; bad specs are one line naming the key, before any work."""

import json
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


def test_a_torn_journal_line_is_evaluated_again_and_no_point_repeats(tmp_path, spec_file, cache):
    spec = load_spec(spec_file)
    out = str(tmp_path / "t.csv")
    clean = run_sweep(spec, str(tmp_path / "clean.csv"), cache=cache)
    journal = out + ".journal.jsonl"
    with open(journal, "w") as fh:  # a run that finished five points and was killed writing the sixth
        fh.write("".join("\n" + json.dumps(r) for r in clean[:5]) + "\n" + json.dumps(clean[5])[:40])
    evaluated = []
    rows = run_sweep(spec, out, cache=cache, progress=lambda done, total: evaluated.append(done))
    assert evaluated[0] == 5 and rows == clean and not os.path.exists(journal)


def test_a_sweep_killed_mid_way_resumes_without_loss_or_duplicates(tmp_path, spec_file, cache):
    out = str(tmp_path / "t.csv")
    command = [sys.executable, "-m", "graphperf", "sweep", spec_file, "-o", out, "--jobs", "2", "--cache-dir", cache,
               "--chunk-points", "2"]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out + ".journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(journal) and open(journal).read().count("{") >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-500:]  # still running: the kill lands mid-sweep
    os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers
    proc.wait()
    before = open(journal).read().count("{")
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
