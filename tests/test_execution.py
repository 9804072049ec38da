"""graphperf.execution: the issue-queue simulation against hand-derived cases, the host figures each mode
takes from the target, and the execution model through the report, the API and the CLI.

Hand-derived cases use a target whose figures are set here (G = the device's gap between kernels,
launch_overhead_us; H = eager host time per kernel, V = eager host time per view, C = compiled launch) and
kernels whose device times are chosen against them; every expected wall is a formula in those symbols,
derived from the queue

    issue_i = issue_{i-1} + host_i,  start_i = max(issue_i, end_{i-1} + gap_i),  end_i = start_i + device_i

(gap_i = G for a kernel, 0 for a free node; host_i = 0 in graph mode).
"""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphperf.errors import UsageError
from graphperf.execution import DEFAULT_MODE, MODES, check_mode, host_costs, simulate
from graphperf.project import NodeTime
from graphperf.target import load_target

US = 1e-6
H_US, V_US, C_US, G_US, L_US = 30.0, 5.0, 20.0, 10.0, 70.0  # eager kernel, eager view, compiled launch,
# inter-kernel gap, eager library call


@pytest.fixture(scope="module")
def target():
    return load_target("h100").with_overrides(launch_overhead_us=G_US, host_eager_us=H_US, host_eager_view_us=V_US,
                                              compiled_launch_us=C_US, host_eager_library_us=L_US)


def kernel(device_s: float, compute_s: float = 0.0, bound: str = "memory") -> NodeTime:
    return NodeTime(compute_s, device_s, 0.0, device_s, bound, device_s=device_s)


FREE = NodeTime(0.0, 0.0, 0.0, 0.0, "free", device_s=0.0)
UNKNOWN = NodeTime(None, None, None, None, "unknown")


# -- the host figures of each mode ---------------------------------------------------------------------


def test_modes_take_their_host_figures_from_the_target(target):
    assert host_costs(target, "graph") == (0.0, 0.0, 0.0)  # a CUDA-graph replay: the gap is on the device
    assert host_costs(target, "eager") == (target.host_eager_us * US, target.host_eager_view_us * US,
                                           target.host_eager_library_us * US)
    assert host_costs(target, "compiled") == (target.compiled_launch_us * US, 0.0, target.compiled_launch_us * US)
    assert host_costs(target, "reduce-overhead") == (0.0, 0.0, 0.0)  # the compiled kernels, replayed
    assert DEFAULT_MODE == "graph" and set(MODES) == {"graph", "eager", "compiled", "reduce-overhead"}


def test_missing_host_figures_default_to_the_launch_overhead_and_views_to_zero(target):
    bare = target.with_overrides(host_eager_us="none", host_eager_view_us="none", compiled_launch_us="none",
                                 host_eager_library_us="none")
    assert bare.host_eager_us is None and bare.compiled_launch_us is None
    launch_s = bare.launch_overhead_us * US
    assert host_costs(bare, "eager") == (launch_s, 0.0, launch_s)
    assert host_costs(bare, "compiled") == (launch_s, 0.0, launch_s)


@pytest.mark.parametrize("mode", ["", "Eager", "cudagraph", None])
def test_an_unknown_mode_is_a_one_line_usage_error(target, mode):
    with pytest.raises(UsageError, match="choose one of graph, eager, compiled") as err:
        simulate([kernel(1 * US)], target, mode)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError):
        check_mode(mode)


# -- hand-derived queues ----------------------------------------------------------------------------------


def test_host_bound_chain_wall_is_every_host_interval_plus_the_last_kernel(target):
    n, d = 5, 3 * US  # eager: each kernel and its gap shorter than the host's H per op
    h = H_US * US
    ex = simulate([kernel(d)] * n, target, "eager")
    assert ex.wall_s == pytest.approx(n * h + d)
    assert ex.start_s == pytest.approx([(i + 1) * h for i in range(n)])
    assert ex.end_s == pytest.approx([(i + 1) * h + d for i in range(n)])
    assert ex.latency_s == pytest.approx([h + d] + [h] * (n - 1))
    assert ex.bound == ["overhead"] * n  # the first kernel waited h > d, each later one h - d > d
    t = ex.totals
    assert t["device_s"] == pytest.approx(n * d) and t["host_s"] == pytest.approx(n * h)
    assert t["idle_s"] == pytest.approx(n * h + d - n * d)
    assert t["launch_bound"] is True and t["kernels"] == n


def test_graph_mode_pays_the_gap_before_every_kernel(target):
    n, d = 5, 3 * US  # each kernel shorter than the gap G: the device idles G before each
    g = G_US * US
    ex = simulate([kernel(d)] * n, target, "graph")
    assert ex.wall_s == pytest.approx(n * (g + d))
    assert ex.start_s == pytest.approx([(i + 1) * g + i * d for i in range(n)])
    assert ex.latency_s == pytest.approx([g + d] * n)
    assert ex.bound == ["overhead"] * n
    assert ex.totals["host_s"] == 0.0 and ex.totals["idle_s"] == pytest.approx(n * g)
    assert ex.totals["launch_bound"] is True


def test_device_bound_chain_wall_is_every_kernel_and_its_gap(target):
    g = G_US * US
    devices = [50 * US, 20 * US, 80 * US]  # each longer than G
    ex = simulate([kernel(d, bound="memory") for d in devices], target, "graph")
    assert ex.wall_s == pytest.approx(3 * g + sum(devices))
    assert ex.latency_s == pytest.approx([g + d for d in devices])
    assert ex.bound == ["memory"] * 3  # each waited g, less than its own device time
    assert ex.totals["idle_s"] == pytest.approx(3 * g)
    assert ex.totals["launch_bound"] is False
    assert ex.totals["graph_mode_latency_s"] == ex.wall_s


def test_graph_mode_free_nodes_add_nothing_and_unknown_nodes_are_skipped(target):
    g = G_US * US
    d = 40 * US
    ex = simulate([kernel(d), FREE, UNKNOWN, FREE, kernel(d)], target, "graph")
    assert ex.wall_s == pytest.approx(2 * g + 2 * d)
    assert ex.latency_s[1] == ex.latency_s[3] == 0.0 and ex.bound[1] == ex.bound[3] == "free"
    assert ex.latency_s[2] is None and ex.host_s[2] is None and ex.bound[2] == "unknown"
    assert ex.totals["kernels"] == 2 and ex.totals["host_s"] == 0.0


def test_eager_views_cost_host_time_and_show_when_the_device_is_idle(target):
    h, v = H_US * US, V_US * US
    # short kernels: the device idles, so each view's host time shows on the wall
    d1, d2, d3 = 1 * US, 2 * US, 1 * US
    ex = simulate([kernel(d1), FREE, FREE, kernel(d2), UNKNOWN, kernel(d3)], target, "eager")
    # issues: h, h+v, h+2v, 2h+2v, (skipped), 3h+2v; every node starts at its issue (h > g + d: the gaps
    # are over before the host issues the next kernel)
    assert ex.start_s[:4] + ex.start_s[5:] == pytest.approx([h, h + v, h + 2 * v, 2 * h + 2 * v, 3 * h + 2 * v])
    assert ex.wall_s == pytest.approx(3 * h + 2 * v + d3)
    assert ex.latency_s[1] == pytest.approx(h + v - (h + d1)) and ex.latency_s[2] == pytest.approx(v)
    assert ex.bound[1] == ex.bound[2] == "overhead"  # a view the device waited for is host time on the wall
    assert ex.host_s == pytest.approx([h, v, v, h, None, h])
    assert ex.totals["idle_s"] == pytest.approx(3 * h + 2 * v + d3 - (d1 + d2 + d3))
    # the same nodes replayed as a CUDA graph: a gap G before each kernel, views free
    g = G_US * US
    assert ex.totals["graph_mode_latency_s"] == pytest.approx(3 * g + d1 + d2 + d3)


def test_eager_views_hide_behind_a_long_kernel(target):
    h, v = H_US * US, V_US * US
    d1, d2 = 200 * US, 3 * US  # d1 > h + 2v: the host issues both views and the next kernel meanwhile
    g = G_US * US
    ex = simulate([kernel(d1), FREE, FREE, kernel(d2)], target, "eager")
    assert ex.wall_s == pytest.approx(h + d1 + g + d2)
    assert ex.latency_s == pytest.approx([h + d1, 0.0, 0.0, g + d2])
    assert ex.bound == ["memory", "free", "free", "overhead"]  # the first waited h < d1, the last its gap g > d2
    assert ex.totals["launch_bound"] is False


def test_eager_library_calls_cost_the_host_more(target):
    h, lib, g = H_US * US, L_US * US, G_US * US
    d = 1 * US  # short kernels: host-bound
    ex = simulate([kernel(d), kernel(d), FREE, kernel(d)], target, "eager", ops=["matmul", "add", "view", "conv"])
    assert ex.host_s == pytest.approx([lib, h, V_US * US, lib])
    assert ex.wall_s == pytest.approx(lib + h + V_US * US + lib + d)
    # without op names every kernel costs the plain eager figure
    assert simulate([kernel(d)] * 2, target, "eager").wall_s == pytest.approx(2 * h + d)
    assert simulate([kernel(d)] * 2, target, "graph", ops=["matmul", "conv"]).wall_s == pytest.approx(2 * (g + d))


def test_compiled_mode_queues_kernels_at_the_compiled_launch_interval(target):
    c = C_US * US
    d = 1 * US
    ex = simulate([kernel(d), FREE, kernel(d)], target, "compiled")
    assert ex.wall_s == pytest.approx(2 * c + d)  # c > g + d: host-bound; the view is free
    assert ex.totals["host_s"] == pytest.approx(2 * c)


def test_a_roofline_overhead_node_the_queue_does_not_hold_up_is_bound_by_its_work(target):
    small_gap = target.with_overrides(launch_overhead_us=1.0)  # the gap (1 us) shorter than the 2 us kernels
    g = 1.0 * US
    tiny_compute = NodeTime(2 * US, 1 * US, 3 * US, 5 * US, "overhead", device_s=2 * US)
    tiny_memory = NodeTime(1 * US, 2 * US, 3 * US, 5 * US, "overhead", device_s=2 * US)
    ex = simulate([kernel(100 * US), tiny_compute, tiny_memory], small_gap, "graph")
    # each waits only its 1 us gap, less than its own 2 us: bound by its work side
    assert ex.bound == ["memory", "compute", "memory"]
    assert ex.latency_s[1:] == pytest.approx([g + 2 * US, g + 2 * US])


def test_launch_bound_is_idle_over_half_the_wall(target):
    g = G_US * US
    # one kernel: wall = g + d, idle = g; launch-bound exactly when g > d
    assert simulate([kernel(0.9 * g)], target, "graph").totals["launch_bound"] is True
    assert simulate([kernel(1.1 * g)], target, "graph").totals["launch_bound"] is False
    assert simulate([], target, "graph").totals == {
        "mode": "graph", "kernels": 0, "device_s": 0.0, "host_s": 0.0, "idle_s": 0.0, "latency_s": 0.0,
        "launch_bound": False, "graph_mode_latency_s": 0.0}


_NODES = st.lists(st.one_of(st.floats(0.0, 200e-6).map(kernel), st.just(FREE), st.just(UNKNOWN)), max_size=60)


@functools.lru_cache(maxsize=None)
def _eager_target():
    return load_target("h100").with_overrides(host_eager_us=H_US, host_eager_view_us=V_US, compiled_launch_us=C_US)


@given(nodes=_NODES, mode=st.sampled_from(MODES))
def test_node_latencies_sum_to_the_wall_and_the_device_never_overlaps(nodes, mode):
    target = _eager_target()
    ex = simulate(nodes, target, mode)
    known = [i for i, t in enumerate(nodes) if t.bound != "unknown"]
    assert sum(ex.latency_s[i] for i in known) == pytest.approx(ex.wall_s, abs=1e-15)
    assert ex.totals["device_s"] == pytest.approx(sum(nodes[i].device_s for i in known))
    assert ex.totals["idle_s"] == pytest.approx(ex.wall_s - ex.totals["device_s"], abs=1e-15)
    ends = [ex.end_s[i] for i in known]
    for a, b in zip(known, known[1:]):
        assert ex.start_s[b] >= ex.end_s[a]  # one kernel at a time, in graph order
    assert ends == sorted(ends)
    assert ex.totals["graph_mode_latency_s"] == pytest.approx(simulate(nodes, target, "graph").wall_s)


# -- through the report ----------------------------------------------------------------------------------


def _free(record) -> bool:
    """A node that launches no kernel: no work at all (the README's definition of a free op)."""
    return not (record.flops or record.transcendentals or record.bytes_read or record.bytes_written)


@pytest.fixture(scope="module")
def tiny_decode():
    from graphperf.pipeline import ModelRequest, load_graph

    return load_graph(ModelRequest("llama3-8b", config="tiny", phase="decode"))


@pytest.fixture(scope="module")
def reports(tiny_decode, target):
    from graphperf.pipeline import analyze_graph

    graph, info = tiny_decode
    return {mode: analyze_graph(graph, target, info, mode=mode) for mode in MODES}


@pytest.mark.parametrize("mode", MODES)
def test_report_latencies_and_rollups_add_up_to_the_wall(reports, mode):
    r = reports[mode]
    t = r.totals
    known = [n for n in r.nodes if n.latency_s is not None]
    assert t["mode"] == mode
    assert sum(n.latency_s for n in known) == pytest.approx(t["latency_s"], rel=1e-12)
    assert sum(g["latency_s"] for g in r.by_op) == pytest.approx(t["latency_s"], rel=1e-12)
    assert sum(g["latency_s"] for g in r.by_module) == pytest.approx(t["latency_s"], rel=1e-12)
    assert sum(t["latency_by_bound_s"].values()) == pytest.approx(t["latency_s"], rel=1e-12)
    assert sum(n.device_s for n in known) == pytest.approx(t["device_s"], rel=1e-12)
    assert sum(n.host_s for n in known) == pytest.approx(t["host_s"], rel=1e-12)
    assert t["idle_s"] == pytest.approx(t["latency_s"] - t["device_s"], rel=1e-9)
    assert t["launch_bound"] == (t["idle_s"] > t["latency_s"] / 2)
    assert t["kernels"] == sum(1 for n in known if not _free(n))
    assert set(n.bound for n in r.nodes) <= {"compute", "memory", "overhead", "free", "unknown"}


def test_report_host_figures_follow_the_mode(reports, target):
    from graphperf.ops import LIBRARY_CALL_OPS

    for mode, r in reports.items():
        kernel_s, free_s, library_s = host_costs(target, mode)
        for n in r.nodes:
            if n.device_s is None:
                continue
            assert n.host_s == (free_s if _free(n) else library_s if n.op in LIBRARY_CALL_OPS else kernel_s)


def test_graph_mode_figure_is_the_graph_mode_wall_in_every_mode(reports):
    graph = reports["graph"].totals
    assert graph["graph_mode_latency_s"] == graph["latency_s"]
    assert reports["eager"].totals["graph_mode_latency_s"] == pytest.approx(graph["latency_s"], rel=1e-12)
    # tiny decode kernels are shorter than the 30 us eager dispatch: eager is launch-bound, a CUDA graph helps
    assert reports["eager"].totals["launch_bound"] and reports["eager"].totals["latency_s"] > graph["latency_s"]


def test_compiled_mode_fuses_first_so_it_launches_fewer_kernels(reports):
    compiled, graph = reports["compiled"], reports["graph"]
    assert compiled.totals["kernels"] < graph.totals["kernels"]
    assert compiled.model["compiled"]["groups_formed"] > 0 and compiled.model["compiled"]["fuse"] == "auto"
    assert any(n.op == "fused" for n in compiled.nodes) and not any(n.op == "fused" for n in graph.nodes)
    assert compiled.totals["flops"] == graph.totals["flops"]  # fusion conserves FLOPs


def test_compiled_mode_uses_the_whatif_auto_fusion(tiny_decode, target):
    from graphperf.pipeline import analyze_graph
    from graphperf.passes.whatif import whatif

    graph, info = tiny_decode
    fused = whatif(graph, target, info, fuse=["attention", "epilogue", "norm", "elementwise"]).after
    compiled = analyze_graph(graph, target, info, mode="compiled")
    assert [n.name for n in compiled.nodes] == [n.name for n in fused.nodes]


def test_default_mode_is_graph_and_json_is_deterministic(tiny_decode, target, reports):
    from graphperf.pipeline import analyze_graph

    graph, info = tiny_decode
    again = analyze_graph(graph, target, info)
    assert again.to_json() == reports["graph"].to_json()
    doc = json.loads(again.to_json())
    for key in ("mode", "device_s", "host_s", "idle_s", "launch_bound", "graph_mode_latency_s", "kernels"):
        assert key in doc["totals"]
    assert {"device_s", "host_s", "start_s"} <= set(doc["nodes"][0])
    assert "device_s,host_s,start_s" in again.to_csv().splitlines()[0]


def test_api_takes_the_mode_and_refuses_an_unknown_one():
    import graphperf

    r = graphperf.analyze("gpt2", config="tiny", dtype="float32", target="h100", mode="eager")
    assert r.totals["mode"] == "eager"
    with pytest.raises(UsageError, match="execution mode 'fast'"):
        graphperf.analyze("gpt2", config="tiny", dtype="float32", target="h100", mode="fast")


# -- CLI ------------------------------------------------------------------------------------------------


def _run(argv, capsys):
    from graphperf.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("mode", MODES)
def test_cli_analyze_mode(capsys, mode):
    code, out, err = _run(["analyze", "llama3-8b", "--config", "tiny", "--phase", "decode", "--mode", mode,
                           "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["totals"]["mode"] == mode


def test_cli_analyze_table_prints_device_host_idle_wall_and_the_launch_bound_note(capsys):
    code, out, err = _run(["analyze", "llama3-8b", "--config", "tiny", "--phase", "decode", "--mode", "eager",
                           "--set", f"host_eager_us={H_US}"], capsys)
    assert code == 0, err
    assert "(eager mode)" in out and "device idle" in out and "host issue" in out and "wall" in out
    assert "launch-bound" in out and "a CUDA graph (--mode graph) would take" in out


def test_cli_whatif_projects_before_after_and_sweep_in_the_mode(capsys):
    code, out, err = _run(["whatif", "llama3-8b", "--config", "tiny", "--phase", "decode", "--fuse", "elementwise",
                           "--sweep", "hbm_gbps=1000:2000:1000", "--mode", "eager", "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["before"]["totals"]["mode"] == doc["after"]["totals"]["mode"] == doc["sweep"]["mode"] == "eager"
    row = doc["sweep"]["rows"][0]
    assert row["latency_s"] == pytest.approx(row["device_s"] + row["idle_s"])
    assert sum(row["latency_by_bound_s"].values()) == pytest.approx(row["latency_s"])


@pytest.mark.parametrize("command", ["analyze", "whatif"])
def test_cli_unknown_mode_is_exit_2_one_line(capsys, command):
    code, out, err = _run([command, "llama3-8b", "--config", "tiny", "--phase", "decode", "--mode", "warp"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "--mode" in err


def test_reduce_overhead_replays_the_compiled_graph_with_no_host_time():
    """torch.compile(mode="reduce-overhead"): the compiled mode's kernels, replayed as a CUDA graph, so its wall is
    the compiled graph's graph-mode wall: sum(device_s) plus the inter-kernel gap of each kernel."""
    import graphperf

    kwargs = dict(config="tiny", dtype="float32", target="h200")
    compiled = graphperf.analyze("gpt2", mode="compiled", **kwargs).totals
    replayed = graphperf.analyze("gpt2", mode="reduce-overhead", **kwargs).totals
    assert replayed["kernels"] == compiled["kernels"] and replayed["device_s"] == compiled["device_s"]
    assert replayed["host_s"] == 0 and replayed["latency_s"] == pytest.approx(compiled["graph_mode_latency_s"])
    gap_s = graphperf.load_target("h200").launch_overhead_us * 1e-6
    assert replayed["latency_s"] == pytest.approx(replayed["device_s"] + replayed["kernels"] * gap_s)
    assert replayed["latency_s"] < compiled["latency_s"]


def test_a_collective_costs_the_host_its_base_except_in_a_cuda_graph_replay():
    """collective_base_us is the host's part of a collective call (fitted to host-timed nccl-tests): eager and
    compiled modes charge it as the call's host time; graph and reduce-overhead replay the call, host time 0."""
    from graphperf.execution import collective_host_s

    h100 = load_target("h100")
    assert collective_host_s(h100, "eager") == collective_host_s(h100, "compiled") == h100.collective_base_us * 1e-6
    assert collective_host_s(h100, "graph") == collective_host_s(h100, "reduce-overhead") == 0.0
    one = NodeTime(1e-6, 5e-6, 0.0, 5e-6, "memory", device_s=5e-6)
    eager = simulate([one], h100, "eager", ["all_reduce"])
    assert eager.host_s == [h100.collective_base_us * 1e-6]
    assert eager.wall_s == pytest.approx(max(h100.collective_base_us * 1e-6, h100.launch_overhead_us * 1e-6) + 5e-6)
    assert simulate([one], h100, "graph", ["all_reduce"]).wall_s == pytest.approx(h100.launch_overhead_us * 1e-6 + 5e-6)
