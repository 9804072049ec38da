"""Sharded data parallelism (issue 14): `train(..., zero=1|2|3)` and `graphperf train --zero`, ZeRO-1/2 (DeepSpeed) and
ZeRO-3 as PyTorch FSDP FULL_SHARD (graphperf/train/zero.py, passes/fully_shard.py, timeline.schedule).

Expected values are formulas over figures counted apart from graphperf: the parameters of the meta-device module,
FSDP's units from their module paths, the ring's (p-1)/p, ceil(x / dp) shards, a critical path found by networkx.
Tiny llama3-8b (two layers, untied embedding and LM head) in fp32.
"""

from __future__ import annotations

import json
import math

import networkx as nx
import pytest
from click.testing import CliRunner

from graphperf.cli import cli, main
from graphperf.errors import UsageError
from graphperf.models import build
from graphperf.passes import canonicalize
from graphperf.passes.fully_shard import fully_shard
from graphperf.pipeline import analyze_graph
from graphperf.target import load_target
from graphperf.train import train
from graphperf.train.capture import Parameter, capture_training_step
from graphperf.train.optimizer import adamw_graph
from graphperf.train.timeline import Comm, Compute, Wait, schedule
from tests.test_train import simulated_peak

H100 = load_target("h100")
MODEL = "llama3-8b"
SHAPE = dict(batch=2, seq=16, dtype="float32", config="tiny")
ITEMSIZE = 4


def meta_parameters() -> dict[str, int]:
    """Elements of every parameter of the tiny model on meta (not through graphperf)."""
    w = build(MODEL, config="tiny", dtype="float32", device="meta")
    return {n: p.numel() for n, p in w.module.named_parameters()}


def units() -> dict[str, int]:
    """FSDP's units (one per decoder layer ``layers.N``, the root the rest): elements per unit."""
    out: dict[str, int] = {}
    for name, n in meta_parameters().items():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "layers" else ""
        out[key] = out.get(key, 0) + n
    return out


def views_of_weights(forward) -> set:
    """The forward's values that are ``view``s (chains of them) of a weight: saved for the backward, they are the
    weights' storage."""
    out = {v.name for v in forward.weights()}
    for node in forward.nodes:
        if node.op.name == "view" and node.inputs[0] in out:
            out.update(node.outputs)
    return out


def ceil_div(x: int, dp: int) -> int:
    return math.ceil(x / dp)


def padded_bytes(numel: int, dp: int) -> int:
    """A flat buffer padded to a multiple of dp elements, in bytes."""
    return dp * ceil_div(numel, dp) * ITEMSIZE


@pytest.fixture(scope="module")
def results():
    return {(z, dp): train(MODEL, "h100", dp=dp, zero=z, **SHAPE) for z in (0, 1, 2, 3) for dp in (2, 8)}


# -- bytes on the wire -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dp", [2, 8])
def test_wire_bytes_per_step_of_each_stage(results, dp):
    P = sum(meta_parameters().values()) * ITEMSIZE
    ring = (dp - 1) / dp
    # DDP: one all-reduce of every gradient, 2 (p-1)/p of its payload on the wire
    ddp = results[0, dp]
    assert sum(b["bytes"] for b in ddp.buckets) == P
    assert 2 * ring * sum(b["bytes"] for b in ddp.buckets) == pytest.approx(2 * ring * P, rel=1e-12)
    # ZeRO-1/2: reduce-scatter of the gradients + all-gather of the parameters, per bucket padded to dp elements
    for z in (1, 2):
        r = results[z, dp]
        padded = sum(padded_bytes(b["numel"], dp) for b in r.buckets)
        c = r.sharding["collectives"]
        assert c["reduce_scatter"]["wire_bytes"] == pytest.approx(ring * padded, rel=1e-12)
        assert c["all_gather"]["wire_bytes"] == pytest.approx(ring * padded, rel=1e-12)
        assert r.totals["wire_bytes_per_step"] == pytest.approx(2 * ring * padded, rel=1e-12)
        assert abs(r.totals["wire_bytes_per_step"] - 2 * ring * P) <= 2 * len(r.buckets) * dp * ITEMSIZE
    # ZeRO-3: every layer unit gathered twice (forward, backward), the root once (held), every unit reduce-scattered
    u = units()
    layers = [k for k in u if k]
    r = results[3, dp]
    c = r.sharding["collectives"]
    gathered = 2 * sum(padded_bytes(u[k], dp) for k in layers) + padded_bytes(u[""], dp)
    scattered = sum(padded_bytes(n, dp) for n in u.values())
    assert (c["all_gather"]["count"], c["reduce_scatter"]["count"]) == (2 * len(layers) + 1, len(layers) + 1)
    assert c["all_gather"]["wire_bytes"] == pytest.approx(ring * gathered, rel=1e-12)
    assert c["reduce_scatter"]["wire_bytes"] == pytest.approx(ring * scattered, rel=1e-12)
    root = u[""] * ITEMSIZE
    assert abs(r.totals["wire_bytes_per_step"] - ring * (3 * P - root)) <= 3 * len(u) * dp * ITEMSIZE


def test_each_collective_is_the_ring_formula(results):
    """Per collective: (p-1) link steps and (p-1)/p of the payload, from the target's fields."""
    p = 8
    for z in (1, 3):
        for run in results[z, p].sharding["collective_runs"]:
            expected = ((p - 1) * H100.scale_up_latency_us * 1e-6
                        + (p - 1) / p * run["payload_bytes"] / (H100.scale_up_gbps * 1e9 * H100.scale_up_efficiency))
            assert run["time_s"] == pytest.approx(expected, rel=1e-12)
        c = results[z, p].sharding["collectives"]
        assert results[z, p].totals["comm_s"] == pytest.approx(sum(k["time_s"] for k in c.values()), rel=1e-12)


# -- memory ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dp", [2, 8])
def test_memory_per_device_of_each_component(results, dp):
    n = sum(meta_parameters().values())
    P = G = n * ITEMSIZE
    u = units()
    base = results[0, dp].memory
    assert base["gradients_bytes"] == G and base["optimizer_states_bytes"] == 8 * n
    # the peaks of live tensors, simulated apart (views of weights, t(w) and rotary slices, are weight storage)
    step = capture_training_step(MODEL, "tiny", SHAPE["batch"], SHAPE["seq"], SHAPE["dtype"])
    fw, bw = canonicalize(step.forward).graph, canonicalize(step.backward).graph
    fw_peak, bw_peak = simulated_peak(fw, set()), simulated_peak(bw, views_of_weights(fw))
    assert base["backward_peak_activation_bytes"] == bw_peak
    assert base["needed_bytes"] == base["weights_bytes"] + 8 * n + max(fw_peak, bw_peak, G)
    buffers = base["weights_bytes"] - P
    for z in (1, 2, 3):
        m = results[z, dp].memory
        assert m["optimizer_states_bytes"] == 8 * ceil_div(n, dp)  # fp32 m and v of 1/dp of the parameters
        assert m["gradients_bytes"] == (G if z == 1 else ceil_div(G, dp))
        assert m["weights_bytes"] == (base["weights_bytes"] if z < 3 else buffers + ceil_div(P, dp))
        assert m["saved_activations_bytes"] == base["saved_activations_bytes"]
        if z == 3:  # the root held, two layer units gathered (the one running, the one prefetched)
            assert m["gathered_parameters_bytes"] == ITEMSIZE * (u[""] + 2 * max(v for k, v in u.items() if k))
        static = m["weights_bytes"] + m.get("gathered_parameters_bytes", 0) + m["optimizer_states_bytes"]
        # the activations: the larger peak; the saved activations are inside both, never added
        assert m["forward_peak_activation_bytes"] == fw_peak
        assert m["needed_bytes"] == static + max(fw_peak, m["backward_peak_activation_bytes"], m["gradients_bytes"])
        assert m["needed_bytes"] < base["needed_bytes"]
    # ZeRO-1 keeps DDP's backward (full gradients); ZeRO-2 frees them at their hand-off, where a bucket's full
    # gradients and its reduced shard are live together: never more than DDP's peak plus every shard
    assert results[1, dp].memory["backward_peak_activation_bytes"] == base["backward_peak_activation_bytes"]
    shards = sum(ceil_div(b["numel"], dp) for b in results[2, dp].buckets) * ITEMSIZE
    assert results[2, dp].memory["backward_peak_activation_bytes"] <= base["backward_peak_activation_bytes"] + shards


# -- the optimizer -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dp", [2, 8])
def test_the_optimizer_updates_one_shard(results, dp):
    n = sum(meta_parameters().values())
    shard = adamw_graph([Parameter("shard", ceil_div(n, dp), "float32", 4 * ceil_div(n, dp), "g")])
    report = analyze_graph(shard, H100, {"name": "adamw"})
    assert report.totals["bytes"] == 28 * ceil_div(n, dp) and report.totals["flops"] == 13 * ceil_div(n, dp)
    full = results[0, dp].totals["optimizer_s"]
    for z in (1, 2, 3):
        t = results[z, dp].totals
        assert t["optimizer_s"] == pytest.approx(report.totals["latency_s"], rel=1e-12)
        assert t["optimizer_s"] < full


# -- the step -------------------------------------------------------------------------------------------------


def test_zero_0_is_todays_ddp_output(results):
    r = results[0, 8]
    default = train(MODEL, "h100", dp=8, **SHAPE)
    assert r.to_dict() == default.to_dict() and r.sharding == {}
    d = r.to_dict()
    assert list(d) == ["schema", "tool", "model", "target", "settings", "totals", "memory", "buckets", "notes"]
    assert list(d["settings"]) == ["dp", "batch_per_device", "global_batch", "seq", "config", "dtype", "mode",
                                   "bucket_cap_bytes", "first_bucket_cap_bytes", "loss", "optimizer"]
    assert list(d["memory"]) == ["weights_bytes", "gradients_bytes", "optimizer_states_bytes",
                                 "saved_activations_bytes", "forward_peak_activation_bytes",
                                 "backward_peak_activation_bytes", "needed_bytes",
                                 "capacity_bytes", "fits", "shortfall_bytes"]
    args = ["train", MODEL, "--config", "tiny", "--dtype", "fp32", "--dp", "8", "--batch", "2", "--seq", "16"]
    runner = CliRunner()
    for fmt in ("json", "table"):
        plain = runner.invoke(cli, [*args, "--format", fmt]).output
        assert runner.invoke(cli, [*args, "--zero", "0", "--format", fmt]).output == plain


def test_zero_1_and_2_steps(results):
    for z in (1, 2):
        t = results[z, 8].totals
        assert t["step_s"] == pytest.approx(t["forward_s"] + t["backward_s"] + t["optimizer_s"]
                                            + t["allgather_after_step_s"], rel=1e-12)
        assert t["allgather_after_step_s"] == pytest.approx(results[z, 8].sharding["collectives"]["all_gather"]
                                                            ["time_s"], rel=1e-12)
        backward_exposed = t["backward_s"] - t["backward_compute_s"]
        assert t["exposed_comm_s"] == pytest.approx(backward_exposed + t["allgather_after_step_s"], rel=1e-9)
        assert t["forward_s"] == results[0, 8].totals["forward_s"]


def test_zero_3_step_waits_for_its_all_gathers(results):
    r, ddp = results[3, 8], results[0, 8]
    t = r.totals
    assert t["forward_compute_s"] == pytest.approx(ddp.totals["forward_s"], rel=1e-12)
    assert t["backward_compute_s"] == pytest.approx(ddp.totals["backward_compute_s"], rel=1e-12)
    first = next(u for u in r.sharding["units"] if u["phase"] == "forward")
    assert first["unit"] == "(root)" and first["all_gather"]["start_s"] == 0.0
    assert t["forward_s"] >= t["forward_compute_s"] + first["all_gather"]["time_s"] - 1e-15  # the first is exposed
    assert t["step_s"] == pytest.approx(t["forward_s"] + t["backward_s"] + t["optimizer_s"], rel=1e-12)
    assert t["exposed_comm_s"] == pytest.approx(t["forward_s"] - t["forward_compute_s"]
                                                + t["backward_s"] - t["backward_compute_s"], rel=1e-9)
    for phase in ("forward", "backward"):  # one communication stream: no two collectives overlap
        spans = sorted((u[op]["start_s"], u[op]["end_s"]) for u in r.sharding["units"] if u["phase"] == phase
                       for op in ("all_gather", "reduce_scatter") if u[op])
        assert all(s >= r_ for (s, _), (_, r_) in zip(spans[1:], spans[:-1]))
        assert all(u[op]["start_s"] >= u[op]["ready_s"] for u in r.sharding["units"] if u["phase"] == phase
                   for op in ("all_gather", "reduce_scatter") if u[op])
    backward = [u for u in r.sharding["units"] if u["phase"] == "backward"]
    assert [u["unit"] for u in backward] == ["(root)", "layers.1", "layers.0"] and backward[0]["all_gather"] is None


def test_fsdp_units_in_the_captured_graphs():
    s = capture_training_step(MODEL, SHAPE["config"], SHAPE["batch"], SHAPE["seq"], SHAPE["dtype"])
    sizes = {p.name: (p.numel, p.dtype) for p in s.parameters}
    u = units()
    fw = fully_shard(canonicalize(s.forward).graph, 4, numel=sizes)
    bw = fully_shard(canonicalize(s.backward).graph, 4, numel=sizes)
    assert [x.name for x in fw.units] == ["", "layers.0", "layers.1"]
    assert {x.name: x.numel for x in fw.units} == u == {x.name: x.numel for x in bw.units}
    order = [n.name for n in fw.graph.nodes]
    for x in fw.units:
        assert order[order.index(x.all_gather) + 1] == x.first_node
    order = [n.name for n in bw.graph.nodes]
    for x in bw.units:  # right after the node of its last gradient (or after another unit's reduce-scatter there)
        between = order[order.index(x.last_gradient) + 1:order.index(x.reduce_scatter)]
        assert all(b.endswith("_reduce_scatter") for b in between)
    ag = next(n for n in fw.graph.nodes if n.name == fw.units[1].all_gather)
    assert fw.graph.values[ag.outputs[0]].type.numel == 4 * ceil_div(u["layers.0"], 4)


# -- the timeline -------------------------------------------------------------------------------------------------


def test_the_fsdp_schedule_equals_the_critical_path():
    """Three units, all-gathers prefetched one ahead, the last unit's reduce-scatter; the wall time against the
    longest path of the step's event graph (networkx), written independently of `schedule`'s recurrence."""
    c = [1.0, 4.0, 2.0]  # compute of units 0, 1, 2
    a = [3.0, 2.5, 1.0]  # their all-gathers
    rs = 1.5  # unit 2's reduce-scatter
    program = [Comm("ag0", a[0]), Wait("ag0"), Comm("ag1", a[1]), Compute("u0", c[0]), Wait("ag1"), Comm("ag2", a[2]),
               Compute("u1", c[1]), Wait("ag2"), Compute("u2", c[2]), Comm("rs2", rs)]
    s = schedule(program)
    # event graph: an edge x -> y of weight w says y starts no earlier than x's start + w
    g = nx.DiGraph()
    edges = [("S", "ag0", 0), ("ag0", "u0", a[0]),  # u0 waits for its all-gather
             ("ag0", "ag1", a[0]), ("u0", "ag1", 0),  # ag1: the comm stream free, issued when u0 starts
             ("u0", "u1", c[0]), ("ag1", "u1", a[1]),
             ("ag1", "ag2", a[1]), ("u1", "ag2", 0),
             ("u1", "u2", c[1]), ("ag2", "u2", a[2]),
             ("ag2", "rs2", a[2]), ("u2", "rs2", c[2]),  # rs2 after u2's last gradient
             ("u2", "E", c[2]), ("rs2", "E", rs)]
    g.add_weighted_edges_from(edges)
    assert s.wall_s == pytest.approx(nx.dag_longest_path_length(g), rel=1e-12)
    # by hand: ag0 [0, 3]; u0 [3, 4]; ag1 [3, 5.5]; u1 [5.5, 9.5]; ag2 [5.5, 6.5]; u2 [9.5, 11.5]; rs2 [11.5, 13]
    assert s.start_s == (0.0, 3.0, 5.5, 11.5) and s.end_s == (3.0, 5.5, 6.5, 13.0) and s.wall_s == 13.0
    assert s.compute_s == sum(c) and s.exposed_comm_s == 13.0 - sum(c)
    with pytest.raises(ValueError, match="before it is issued"):
        schedule([Wait("ag0")])


# -- usage ----------------------------------------------------------------------------------------------------------


ARGS = ["train", MODEL, "--config", "tiny", "--dtype", "fp32", "--dp", "4", "--batch", "2", "--seq", "16"]


def test_cli_shows_the_stage_collectives_and_memory(tmp_path):
    runner = CliRunner()
    table = runner.invoke(cli, [*ARGS, "--zero", "3"])
    assert table.exit_code == 0, table.output
    for text in ("ZeRO-3 / FSDP FULL_SHARD", "all-gather", "reduce-scatter", "exposed", "gathered parameters",
                 "AdamW states", "layers.1"):
        assert text in table.output
    out = runner.invoke(cli, [*ARGS, "--zero", "2", "--format", "json"])
    d = json.loads(out.output)
    assert d["settings"]["zero"] == d["sharding"]["stage"] == 2
    assert set(d["sharding"]["collectives"]) == {"reduce_scatter", "all_gather"}
    assert {"exposed_comm_s", "comm_s", "wire_bytes_per_step"} <= set(d["totals"])


def test_bad_zero_is_a_one_line_error(capsys):
    for args, what in ((["--zero", "4"], "--zero 4"), (["--zero", "-1"], "--zero -1"),
                       (["--zero", "1", "--dp", "1"], "needs --dp >= 2"),
                       (["--zero", "3", "--bucket-mb", "5"], "--bucket-mb")):
        assert main([*ARGS, *args]) == 2, args
        err = capsys.readouterr().err
        assert what in err and err.count("\n") == 1, err
    with pytest.raises(UsageError, match="--zero True"):
        train(MODEL, "h100", dp=2, zero=True, **SHAPE)


@pytest.mark.slow
def test_llama3_8b_fits_an_h100_with_zero_3_not_with_ddp():
    """The README's command: llama3-8b at dp 8, batch 1, seq 2048 in bf16; ZeRO-3's memory per device by component
    against P = 2 bytes x 8,030,261,248 parameters."""
    ddp = train("llama3-8b", "h100", dp=8, batch=1, seq=2048)
    z3 = train("llama3-8b", "h100", dp=8, batch=1, seq=2048, zero=3)
    n = 8_030_261_248
    assert ddp.totals["parameters"] == z3.totals["parameters"] == n
    assert ddp.memory["fits"] is False and z3.memory["fits"] is True
    assert z3.memory["optimizer_states_bytes"] == 8 * ceil_div(n, 8)
    assert z3.memory["gradients_bytes"] == ceil_div(2 * n, 8)
    c = z3.sharding["collectives"]
    assert c["all_gather"]["count"] == 2 * 32 + 1 and c["reduce_scatter"]["count"] == 32 + 1
    assert z3.totals["optimizer_s"] < ddp.totals["optimizer_s"] / 7
