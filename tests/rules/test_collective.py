"""Collectives: the cost rule (reduction FLOPs, device-memory bytes) and the link time, against the formulas."""

import math

import pytest

from graphperf.cost import Cost
from graphperf.errors import RuleError
from graphperf.ops import canonical
from graphperf.rules import rule_for
from graphperf.rules.collective import collective_time, steps, wire_bytes
from graphperf.target import load_target

from ._util import T

COVERED_OPS = {"all_reduce", "all_gather", "reduce_scatter", "all_to_all"}

B, H = 4, 8192  # an activation [B, 1, H] in bf16: S = 2*B*H bytes


@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("op, ins, outs", [
    ("all_reduce", [T(B, 1, H, dtype="bfloat16")], lambda p: [T(B, 1, H, dtype="bfloat16")]),
    ("all_to_all", [T(B, 1, H, dtype="bfloat16")], lambda p: [T(B, 1, H, dtype="bfloat16")]),
    ("all_gather", [T(B, 1, H, dtype="bfloat16")], lambda p: [T(B, 1, H * p, dtype="bfloat16")]),
    ("reduce_scatter", [T(B, 1, H * 8, dtype="bfloat16")], lambda p: [T(B, 1, H * 8 // p, dtype="bfloat16")]),
])
def test_rule_counts_the_reduction_and_one_read_one_write(op, ins, outs, p):
    out = outs(p)
    cost = rule_for(canonical(op))(ins, out, {"group_size": p})
    n = ins[0].numel
    flops = (p - 1) * n // p if op in ("all_reduce", "reduce_scatter") else 0
    assert cost == Cost(flops, 0, 0, ins[0].nbytes, out[0].nbytes)


def test_group_of_one_is_free():
    x = T(B, 1, H, dtype="bfloat16")
    assert rule_for(canonical("all_reduce"))([x], [x], {"group_size": 1}) == Cost.zero()


@pytest.mark.parametrize("attrs, match", [({}, "group_size"), ({"group_size": 0}, "group_size"),
                                          ({"group_size": 2, "algorithm": "mesh"}, "algorithm"),
                                          ({"group_size": 2, "algorithm": "tree"}, "tree")])
def test_rule_refuses_bad_attributes(attrs, match):
    x = T(B, 1, H, dtype="bfloat16")
    op = "all_gather" if attrs.get("algorithm") == "tree" else "all_reduce"
    out = T(B, 1, H * 2, dtype="bfloat16") if op == "all_gather" else x
    with pytest.raises(RuleError, match=match):
        rule_for(canonical(op))([x], [out], attrs)


def test_all_gather_shapes_must_agree_with_the_group():
    x = T(B, 1, H, dtype="bfloat16")
    with pytest.raises(RuleError, match="gathered"):
        rule_for(canonical("all_gather"))([x], [x], {"group_size": 4})


@pytest.mark.parametrize("p", [2, 4, 8])
def test_ring_wire_bytes_and_steps(p):
    s = 1_000_000
    assert wire_bytes("all_reduce", p, s) == 2 * (p - 1) / p * s and steps("all_reduce", p) == 2 * (p - 1)
    for op in ("all_gather", "reduce_scatter", "all_to_all"):
        assert wire_bytes(op, p, s) == (p - 1) / p * s and steps(op, p) == p - 1
    assert wire_bytes("all_reduce", p, s, "tree") == 2 * s
    assert steps("all_reduce", p, "tree") == 2 * math.ceil(math.log2(p))
    assert wire_bytes("all_reduce", p, s, "nvls") == s and steps("all_reduce", p, "nvls") == 2  # up, down the switch


def test_nvls_is_an_all_reduce_algorithm_only():
    x = T(B, 1, H, dtype="bfloat16")
    with pytest.raises(RuleError, match="nvls"):
        rule_for(canonical("all_gather"))([x], [T(B, 1, H * 2, dtype="bfloat16")],
                                          {"group_size": 2, "algorithm": "nvls"})


def _link_s(target, link, n_steps, wire):
    """The module docstring's device time, written out: steps * hop latency + wire / (bandwidth * efficiency); the
    call's base is host time (`collective_host_s`)."""
    return (n_steps * getattr(target, f"{link}_latency_us") * 1e-6
            + wire / (getattr(target, f"{link}_gbps") * 1e9 * getattr(target, f"{link}_efficiency")))


@pytest.mark.parametrize("p", [2, 8])
def test_link_time_is_base_plus_steps_times_latency_plus_wire_over_achieved_bandwidth(p):
    h100 = load_target("h100")
    x = T(B, 1, H, dtype="bfloat16")
    s = 2 * B * H
    t = collective_time("all_reduce", {"group_size": p}, x, x, h100)
    expected = (2 * (p - 1) * h100.scale_up_latency_us * 1e-6
                + 2 * (p - 1) / p * s / (h100.scale_up_gbps * 1e9 * h100.scale_up_efficiency))
    assert t.link == "scale_up" and t.payload_bytes == s and t.link_s == pytest.approx(expected, rel=1e-12)
    assert t.call_s == h100.collective_base_us * 1e-6  # the host's part: a standalone call takes call_s + link_s
    assert t.link_s == pytest.approx(_link_s(h100, "scale_up", 2 * (p - 1), 2 * (p - 1) / p * s), rel=1e-12)
    gathered = T(B, 1, H * p, dtype="bfloat16")
    t = collective_time("all_gather", {"group_size": p}, x, gathered, h100)
    expected = _link_s(h100, "scale_up", p - 1, (p - 1) / p * gathered.nbytes)
    assert t.link_s == pytest.approx(expected, rel=1e-12)
    t = collective_time("all_reduce", {"group_size": p, "algorithm": "nvls"}, x, x, h100)
    assert t.link_s == pytest.approx(_link_s(h100, "scale_up", 2, s), rel=1e-12)


def test_a_small_all_reduce_costs_about_the_base_and_a_large_one_the_achieved_bandwidth():
    a100 = load_target("a100")
    small, large = T(8, 1, 12288, dtype="float16"), T(8, 2048, 12288, dtype="float16")  # GPT-3 TP4 decode / prefill
    small_t = collective_time("all_reduce", {"group_size": 4}, small, small, a100)
    t_small = small_t.call_s + small_t.link_s  # a standalone call, as nccl-tests times it
    assert a100.collective_base_us * 1e-6 < t_small < 2 * a100.collective_base_us * 1e-6
    t_large = collective_time("all_reduce", {"group_size": 4}, large, large, a100).link_s
    bandwidth_s = 1.5 * large.nbytes / (a100.scale_up_gbps * 1e9 * a100.scale_up_efficiency)
    assert bandwidth_s < t_large < 1.05 * bandwidth_s


@pytest.mark.parametrize("name", ["a100", "h100", "h200", "h100-pcie", "b200", "gb200", "mi300x", "mi325x"])
def test_bundled_link_figures_are_sourced_and_the_efficiency_a_fraction(name):
    t = load_target(name)
    assert 0 < t.scale_up_efficiency <= 1 and t.collective_base_us > 0
    for field in ("scale_up_efficiency", "collective_base_us"):
        assert "collectives_fitted" in t.sources[field] and field in t.derived
    assert ("transferred from" in t.sources["collective_base_us"]) == (name in ("h100-pcie", "b200", "mi325x"))


def test_a_group_beyond_the_node_uses_scale_out_and_a_missing_figure_gives_no_time():
    x = T(B, 1, H, dtype="bfloat16")
    bundled = load_target("h100")  # its scale-out figures: one 400 Gb/s NIC per GPU (graphperf/targets/h100.toml)
    t = collective_time("all_reduce", {"group_size": 16}, x, x, bundled)
    assert t.link == "scale_out"
    assert t.link_s == pytest.approx(_link_s(bundled, "scale_out", 30, 2 * 15 / 16 * x.nbytes))
    h100 = bundled.with_overrides(scale_out_gbps="none", scale_out_latency_us="none", scale_out_efficiency="none")
    t = collective_time("all_reduce", {"group_size": 16}, x, x, h100)
    assert t.link == "scale_out" and t.link_s is None and "scale_out_gbps" in t.missing
    assert "scale_out_efficiency" in t.missing
    fast = h100.with_overrides(scale_out_gbps="50", scale_out_latency_us="5", scale_out_efficiency="0.8")
    t = collective_time("all_reduce", {"group_size": 16}, x, x, fast)
    assert t.link_s == pytest.approx(_link_s(fast, "scale_out", 30, 2 * 15 / 16 * x.nbytes))
    assert t.link_s == pytest.approx(30 * 5e-6 + 2 * 15 / 16 * x.nbytes / (50e9 * 0.8))
    no_base = h100.with_overrides(collective_base_us="none")
    t = collective_time("all_reduce", {"group_size": 2}, x, x, no_base)
    assert t.link_s is None and t.missing == "collective_base_us"
