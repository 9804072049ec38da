"""Data-parallel training steps (issue 14): the capture of forward + loss and backward on fake tensors, DDP's
gradient buckets (passes/data_parallel.py), the overlap timeline (graphperf/train/timeline.py), AdamW's pass and
`graphperf.train.train`. Tiny configs only; the oracles are independent of graphperf: FlopCounterMode on the real
model, the parameters counted on meta, the ring formula from the target's fields, a timeline simulated here.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.models import build
from graphperf.ops import canonical
from graphperf.passes import canonicalize
from graphperf.passes.data_parallel import FIRST_BUCKET_BYTES, MIB, bucket_assignment, data_parallel
from graphperf.pipeline import analyze_graph
from graphperf.target import load_target
from graphperf.train import SCHEMA, train
from graphperf.train.capture import Parameter, capture_training_step
from graphperf.train.memory import step_memory
from graphperf.train.optimizer import adamw_graph
from graphperf.train.timeline import overlap

H100 = load_target("h100")
SHAPE = dict(batch=2, seq=16, dtype="float32")


def step():
    return capture_training_step("gpt2", "tiny", SHAPE["batch"], SHAPE["seq"], SHAPE["dtype"])


def meta_parameter_bytes(model: str = "gpt2", dtype: str = "float32") -> int:
    """Every parameter's bytes, counted on the meta-device module (tied weights once), not through graphperf."""
    w = build(model, config="tiny", dtype=dtype, device="meta")
    return sum(p.numel() * p.element_size() for p in w.module.parameters())


def matmul_flops(graph: Graph) -> int:
    report = analyze_graph(graph, H100, {"name": graph.name})
    return sum(n.matrix_flops for n in report.nodes if n.op == "matmul")


def simulated_peak(graph: Graph, weight_storage: set) -> int:
    """The most bytes live at once while `graph` runs in order, simulated node by node: a storage is allocated by
    its producer (a non-weight graph input: before the first node), shared by its ``view``s, and released after
    its last reader, or kept to the end if any of its views is a graph output; weights and `weight_storage` (views
    of weights saved for the backward) are not activations."""
    storage = {name: name for name, v in graph.values.items() if v.producer is None}
    for node in graph.nodes:
        for out in node.outputs:
            storage[out] = storage[node.inputs[0]] if node.op.name == "view" else out
    weights = {n for n, v in graph.values.items() if v.kind == "weight"} | set(weight_storage)
    last = {}
    for i, node in enumerate(graph.nodes):
        for name in (*node.inputs, *node.outputs):
            if name is not None:
                last[storage[name]] = i
    for name in graph.outputs:
        last[storage[name]] = len(graph.nodes)
    live = {name for name, v in graph.values.items() if v.kind == "input" and v.producer is None} - weights
    peak = 0
    for i, node in enumerate(graph.nodes):
        live |= {storage[o] for o in node.outputs} - weights
        peak = max(peak, sum(graph.values[b].type.nbytes for b in live))
        live = {b for b in live if last.get(b, -1) > i}
    return peak


# -- capture ----------------------------------------------------------------------------------------------


def test_the_backward_matmul_flops_equal_flop_counter_modes():
    """The oracle: FlopCounterMode over the real tiny model's loss.backward() (it counts the matmuls; it has no
    formula for CPU flash attention, which graphperf counts apart as attention_backward)."""
    w = build("gpt2", config="tiny", phase="prefill", device="cpu", **SHAPE)
    module = w.module.train()
    with FlopCounterMode(display=False) as forward:
        out = module(*w.args)
        loss = F.cross_entropy(out.flatten(0, -2).float(), torch.zeros(out.shape[:-1], dtype=torch.long).flatten())
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    s = step()
    assert matmul_flops(s.backward) == backward.get_total_flops() > 0
    assert matmul_flops(s.forward) == forward.get_total_flops() > 0


def test_the_step_includes_the_loss_and_one_gradient_per_parameter():
    s = step()
    ops = {n.op.name for n in s.forward.nodes}
    assert {"log_softmax", "nll_loss"} & ops or any("nll" in n.source_op for n in s.forward.nodes)
    assert s.forward.values[s.forward.outputs[0]].type.shape == ()  # the loss comes first
    w = build("gpt2", config="tiny", dtype="float32", device="meta")
    assert [p.name for p in s.parameters] == [n for n, _ in w.module.named_parameters()]
    assert s.parameter_count == sum(p.numel() for p in w.module.parameters())
    assert s.gradient_bytes == meta_parameter_bytes()
    assert all(s.backward.values[p.gradient].type.numel == p.numel for p in s.parameters)


# -- the data-parallel pass --------------------------------------------------------------------------------


def test_bucket_payloads_sum_to_every_parameter_gradient():
    res = data_parallel(canonicalize(step().backward).graph, dp=8, bucket_cap_mb=0.05)
    assert len(res.buckets) > 1 and res.gradient_bytes == meta_parameter_bytes()
    reduces = [n for n in res.graph.nodes if n.op.name == "all_reduce"]
    assert [n.name for n in reduces] == [b.all_reduce for b in res.buckets]
    for node, bucket in zip(reduces, res.buckets):
        assert node.attrs["group_size"] == 8 and res.graph.values[node.inputs[0]].type.nbytes == bucket.nbytes
        before = [n.name for n in res.graph.nodes]
        assert before[before.index(node.name) - 1] == bucket.ready_after or \
            res.graph.nodes[before.index(node.name) - 1].op.name == "all_reduce"
    params = [p for b in res.buckets for p in b.parameters]
    assert sorted(params) == sorted(p.name for p in step().parameters)


def test_a_bucket_is_ready_after_its_last_gradient():
    g = canonicalize(step().backward).graph
    res = data_parallel(g, dp=2, bucket_cap_mb=0.05)
    position = {n.name: i for i, n in enumerate(g.nodes)}
    grad = {d["parameter"]: d["value"] for d in g.meta["gradients"]}
    readies = []
    for b in res.buckets:
        last = max(position[g.values[grad[p]].producer] for p in b.parameters)
        assert position[b.ready_after] == last
        readies.append(last)
    assert readies == sorted(readies)  # in the order the backward produces them


def test_a_bigger_bucket_cap_gives_fewer_buckets():
    g = canonicalize(step().backward).graph
    counts = [len(data_parallel(g, dp=8, bucket_cap_mb=cap).buckets) for cap in (0.02, 0.1, 25)]
    assert counts[0] > counts[1] > counts[2] == 1


def test_ddp_bucket_rule():
    # a gradient that crosses the cap joins the bucket; DDP's default caps the first bucket at 1 MiB
    assert bucket_assignment([("f", 4), ("f", 4), ("f", 4)], first_cap=8, cap=8) == [[0, 1], [2]]
    assert bucket_assignment([("f", 4), ("h", 4), ("f", 4)], first_cap=8, cap=8) == [[0, 2], [1]]
    t = TensorType((256, 1024), "float32")  # 1 MiB each
    values = {"x": Value("x", t, "input")} | {f"g{i}": Value(f"g{i}", t, producer=f"n{i}") for i in range(30)}
    nodes = [Node(f"n{i}", canonical("relu"), "relu", ("x",), (f"g{i}",)) for i in range(30)]
    g = Graph("bw", nodes, values, list(values)[1:], {"gradients": [{"parameter": f"w{i}", "value": f"g{i}"}
                                                                    for i in range(30)]})
    res = data_parallel(g, dp=4)
    assert res.first_bucket_cap_bytes == FIRST_BUCKET_BYTES and res.bucket_cap_bytes == 25 * MIB
    assert [len(b.parameters) for b in res.buckets] == [1, 25, 4]
    assert [len(b.parameters) for b in data_parallel(g, dp=4, bucket_cap_mb=25).buckets] == [25, 5]


def test_one_device_reduces_nothing_and_bad_input_is_one_line():
    g = canonicalize(step().backward).graph
    res = data_parallel(g, dp=1)
    assert not res.modified and res.buckets == () and res.graph is g
    assert not any(n.op.name == "all_reduce" for n in res.graph.nodes)
    for kwargs, match in (({"dp": 0}, "--dp 0"), ({"dp": 2, "bucket_cap_mb": 0}, "--bucket-mb 0"),
                          ({"dp": 2, "gradients": [{"parameter": "w", "value": "nope"}]}, "'nope' of w")):
        with pytest.raises(UsageError, match=match):
            data_parallel(g, **kwargs)
    with pytest.raises(UsageError, match="names no gradients"):
        data_parallel(Graph("g", [], {}, []), dp=2)


# -- the timeline --------------------------------------------------------------------------------------------


def test_the_timeline_against_a_hand_built_one():
    compute_end = 10.0
    ready, dur = [1.0, 2.0, 8.0, 10.0], [2.5, 1.0, 1.0, 0.5]
    t = overlap(compute_end, ready, dur)
    # by hand: [1, 3.5], [3.5, 4.5], [8, 9], [10, 10.5]
    assert t.start_s == (1.0, 3.5, 8.0, 10.0) and t.end_s == (3.5, 4.5, 9.0, 10.5)
    assert t.allreduce_s == 5.0 and t.exposed_comm_s == max(0.0, 10.5 - compute_end) == 0.5
    assert t.backward_s == 10.5
    hidden = overlap(20.0, ready, dur)
    assert hidden.exposed_comm_s == 0.0 and hidden.backward_s == 20.0 and hidden.hidden_fraction == 1.0
    late = overlap(1.0, [0.0, 0.0], [3.0, 4.0])  # comm-bound: everything after compute exposed
    assert late.end_s == (3.0, 7.0) and late.exposed_comm_s == 6.0 and late.allreduce_s == 7.0
    assert overlap(3.0, [], []).backward_s == 3.0 and overlap(3.0, [], []).exposed_comm_s == 0.0


# -- memory ----------------------------------------------------------------------------------------------------


def test_training_memory_on_a_hand_built_step():
    """A forward that saves h (8 KiB) and a view of its weight w (4 KiB), and a backward whose inputs are h, that
    view and the loss's gradient; tensor sizes in KiB, the peaks worked out by hand."""
    def kib(k: int) -> TensorType:
        return TensorType((256 * k,), "float32")

    def op(name: str, ins: tuple, out: str) -> Node:  # a view, or any op that allocates its output
        return Node(name, canonical("view" if name.startswith("view") else "relu"), name, ins, (out,))

    fw = Graph("fw", [op("view_w", ("w",), "wt"), op("f1", ("x", "wt"), "h"), op("f2", ("h",), "y"),
                      op("f3", ("y",), "loss")],
               {"x": Value("x", kib(1), "input"), "w": Value("w", kib(4), "weight"),
                "wt": Value("wt", kib(4), producer="view_w"), "h": Value("h", kib(8), producer="f1"),
                "y": Value("y", kib(2), producer="f2"), "loss": Value("loss", kib(1), producer="f3")},
               ["loss", "h", "wt"])
    bw = Graph("bw", [op("b1", ("tangent", "h"), "d1"), op("b2", ("d1", "wt", "h"), "gw")],
               {"tangent": Value("tangent", kib(1), "input"), "h": Value("h", kib(8), "input"),
                "wt": Value("wt", kib(4), "input"), "d1": Value("d1", kib(16), producer="b1"),
                "gw": Value("gw", kib(4), producer="b2")},
               ["gw"], {"gradients": [{"parameter": "w", "value": "gw"}]})
    params = [Parameter("w", 1024, "float32", 4 * 1024, "gw")]
    # forward, live per node: view_w nothing new (weight storage); f1 x + h = 9; f2 h + y = 10; f3 h + y + loss = 11
    # backward: b1 tangent + h + d1 = 25; b2 h (saved, still read) + d1 + gw = 28; wt is w's storage, never counted
    m = step_memory(fw, bw, params)
    assert m["forward_peak_activation_bytes"] == 11 * 1024 and m["backward_peak_activation_bytes"] == 28 * 1024
    assert m["saved_activations_bytes"] == (8 + 1) * 1024  # h and the loss's gradient, not the weight's view
    # weights 4 + AdamW's fp32 m, v of 1024 elements 8 + the larger peak 28: the saved h is inside the 28
    assert m["needed_bytes"] == (4 + 8 + 28) * 1024
    # ZeRO-2 over dp 2 hands gw off after b2: the peak is unchanged (gw is produced there), the shard 2 KiB is kept
    z2 = step_memory(fw, bw, params, zero=2, dp=2, handoffs={"b2": ["gw"]})
    assert z2["backward_peak_activation_bytes"] == 28 * 1024 and z2["gradients_bytes"] == 2 * 1024
    assert z2["needed_bytes"] == (4 + 8 // 2 + 28) * 1024


# -- the step ----------------------------------------------------------------------------------------------


def test_one_device_step_is_forward_plus_backward_plus_optimizer():
    r = train("gpt2", "h100", dp=1, config="tiny", **SHAPE)
    t = r.totals
    assert r.buckets == [] and t["allreduce_s"] == 0.0 and t["exposed_comm_s"] == 0.0
    assert t["backward_s"] == t["backward_compute_s"] > 0
    assert t["step_s"] == pytest.approx(t["forward_s"] + t["backward_s"] + t["optimizer_s"], rel=1e-12)
    assert t["tokens_per_s"] == pytest.approx(2 * 16 / t["step_s"])
    no_opt = train("gpt2", "h100", dp=1, config="tiny", optimizer=False, **SHAPE)
    assert "optimizer_s" not in no_opt.totals
    assert no_opt.totals["step_s"] == pytest.approx(t["forward_s"] + t["backward_s"], rel=1e-12)
    assert any("left out" in n for n in no_opt.notes)
    m = r.memory  # fp32: weights, gradients, and AdamW's m and v (8 bytes) per parameter, plus activations
    P = meta_parameter_bytes()
    assert m["weights_bytes"] == m["gradients_bytes"] == P and m["optimizer_states_bytes"] == 2 * P
    # --no-optimizer leaves the step's time out, not AdamW's states: the optimizer still holds them
    assert no_opt.memory == m
    # memory = weights + moments + the largest set of tensors live at once, simulated here over the graphs
    s = step()
    fw, bw = canonicalize(s.forward).graph, canonicalize(s.backward).graph
    weight_storage = {v for views in bw.meta["parameters"].values() for v in views}  # t(w) saved: the weights'
    fw_peak, bw_peak = simulated_peak(fw, set()), simulated_peak(bw, weight_storage)
    assert fw_peak == m["forward_peak_activation_bytes"] and bw_peak == m["backward_peak_activation_bytes"]
    assert t["memory_per_device_bytes"] == m["needed_bytes"] == P + 2 * P + max(fw_peak, bw_peak)
    # the saved activations are inside the backward's peak, not added to it
    assert m["needed_bytes"] < 3 * P + m["saved_activations_bytes"] + bw_peak
    assert t["fits"] is True and m["saved_activations_bytes"] > 0


def test_the_data_parallel_step_overlaps_its_buckets():
    r = train("gpt2", "h100", dp=8, config="tiny", bucket_cap_mb=0.05, **SHAPE)
    t, buckets = r.totals, r.buckets
    assert r.to_dict()["schema"] == SCHEMA == "graphperf.train/1" and len(buckets) > 1
    assert sum(b["bytes"] for b in buckets) == meta_parameter_bytes()
    assert t["allreduce_s"] == pytest.approx(sum(b["time_s"] for b in buckets))
    assert 0.0 <= t["exposed_comm_s"] <= t["allreduce_s"]
    last_end = max(b["end_s"] for b in buckets)
    assert t["exposed_comm_s"] == pytest.approx(max(0.0, last_end - t["backward_compute_s"]), abs=1e-15)
    assert t["backward_s"] == pytest.approx(max(t["backward_compute_s"], last_end))
    prev_end = 0.0
    for b in buckets:  # one communication stream, bucket order
        assert b["start_s"] == max(b["ready_s"], prev_end) and b["ready_s"] <= t["backward_compute_s"]
        prev_end = b["end_s"]
    assert r.settings["global_batch"] == 16 and t["tokens_per_s"] == pytest.approx(8 * 2 * 16 / t["step_s"])


def test_a_bucket_all_reduce_is_the_ring_formula():
    """2(p-1) link steps and 2(p-1)/p of the payload on the wire, from the target's fields (graphperf/rules/
    collective.py's ring all_reduce), for each bucket."""
    p = 8
    r = train("gpt2", "h100", dp=p, config="tiny", bucket_cap_mb=0.05, **SHAPE)
    for b in r.buckets:
        expected = (2 * (p - 1) * H100.scale_up_latency_us * 1e-6
                    + 2 * (p - 1) / p * b["bytes"] / (H100.scale_up_gbps * 1e9 * H100.scale_up_efficiency))
        assert b["time_s"] == pytest.approx(expected, rel=1e-12)


def test_adamw_moves_its_bytes_per_parameter():
    s = step()
    report = analyze_graph(adamw_graph(s.parameters), H100, {"name": "adamw"})
    n = s.parameter_count
    assert report.totals["bytes"] == 28 * n  # fp32: read p, g, m, v; write p, m, v; 4 bytes each
    assert report.totals["flops"] == 13 * n and report.totals["transcendentals"] == n
    assert report.nodes[0].bound == "memory"
    bf16 = build("gpt2", config="tiny", dtype="bfloat16", device="meta").module
    params = [Parameter(k, v.numel(), "bfloat16", 2 * v.numel(), "g") for k, v in bf16.named_parameters()]
    assert analyze_graph(adamw_graph(params), H100, {"name": "adamw"}).totals["bytes"] == 22 * n


def test_a_target_without_link_figures_is_refused_in_one_line():
    bare = H100.with_overrides(scale_up_gbps=None) if "scale_up_gbps" in H100.to_dict() else None
    if bare is None or getattr(bare, "scale_up_gbps", None) is not None:
        pytest.skip("the target cannot drop its link figure")
    with pytest.raises(UsageError, match="no link figures"):
        train("gpt2", bare, dp=2, config="tiny", **SHAPE)
    assert math.isfinite(train("gpt2", bare, dp=1, config="tiny", **SHAPE).totals["step_s"])


@pytest.mark.slow
def test_gpt2_full_captures_on_fake_tensors_and_buckets_like_ddp():
    """The full 124M model, no weight materialised: every parameter's bf16 gradient in DDP's default buckets (a
    1 MiB first bucket, then 25 MiB ones closing at the gradient that crosses the cap)."""
    r = train("gpt2", "h100", dp=8, batch=1, seq=1024)
    params = build("gpt2", config="full", device="meta").module.parameters()
    total = sum(p.numel() * p.element_size() for p in params)
    assert r.totals["parameters"] == 124_439_808 and sum(b["bytes"] for b in r.buckets) == total == 2 * 124_439_808
    assert r.buckets[0]["bytes"] >= MIB and all(b["bytes"] >= 25 * MIB for b in r.buckets[1:-1])
    assert 0 <= r.totals["exposed_comm_s"] <= r.totals["allreduce_s"] and r.totals["fits"]


def test_the_bucket_view_assumption_is_stated():
    """PyTorch's DDP defaults to gradient_as_bucket_view=False (a second gradient-sized buffer, a copy in and out);
    the projection assumes True, and every DDP output says so (ZeRO stages keep their own notes)."""
    import inspect

    default = inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters["gradient_as_bucket_view"]
    assert default.default is False
    r = train("gpt2", "h100", dp=2, config="tiny", **SHAPE)
    assert any("gradient_as_bucket_view=True" in n and "default (False)" in n for n in r.notes)
    import graphperf.passes.data_parallel as dp_pass

    assert "gradient_as_bucket_view=True" in dp_pass.__doc__
