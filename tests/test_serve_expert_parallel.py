"""graphperf serve --ep: the experts of a mixture-of-experts model over ep groups (passes/expert_parallel.py wired
into graphperf/serve/generation.py), on the tiny mixtral config, checked against the formulas."""

import math

import pytest
from click.testing import CliRunner

from graphperf.cli import cli
from graphperf.errors import UsageError
from graphperf.serve import serve
from graphperf.serve.graphs import capture_phase
from graphperf.target import load_target

# mixtral tiny: 8 experts, top-2, hidden 64, bf16 (models/mixtral.py)
E, K, HIDDEN, ITEMSIZE = 8, 2, 64, 2
RUN = dict(config="tiny", input_len=16, output_len=5)


def _expert_bytes(batch):
    g = capture_phase("mixtral-8x7b", "tiny", "decode", batch, RUN["input_len"] + 1, "bfloat16")
    return sum(v.type.nbytes for v in g.weights() if v.name.endswith(("_w_gate", "_w_up", "_w_down")))


@pytest.fixture(scope="module")
def runs():
    return {(tp, ep): serve("mixtral-8x7b", "h100", tp=tp, ep=ep, batch=8, usd_per_hour=3.0, **RUN)
            for tp, ep in [(1, 1), (1, 2), (2, 2), (1, 4)]}


def test_each_group_serves_batch_over_ep_with_its_share_of_the_experts(runs):
    one = runs[(1, 1)]
    for ep in (2, 4):
        r = runs[(1, ep)]
        assert r.settings["ep"] == ep and r.settings["devices"] == ep
        assert r.memory["kv_cache_bytes"] == one.memory["kv_cache_bytes"] / ep  # batch / ep sequences a device
        assert one.memory["weights_bytes"] - r.memory["weights_bytes"] == _expert_bytes(8) * (ep - 1) / ep


def test_throughput_and_cost_count_every_device(runs):
    for (tp, ep), r in runs.items():
        t, devices = r.totals, tp * ep
        assert t["output_tokens_per_s"] == pytest.approx(8 * RUN["output_len"] / t["e2e_s"])
        assert t["output_tokens_per_s_per_device"] == pytest.approx(t["output_tokens_per_s"] / devices)
        assert t["usd_per_million_tokens"] == pytest.approx(3.0 * devices / 3600 / t["output_tokens_per_s"] * 1e6)
        assert t["max_batch_that_fits"] % ep == 0  # whole sequences in every group


def test_the_exchanges_carry_the_routed_copies_of_one_groups_tokens(runs):
    h100 = load_target("h100")
    for (tp, ep), r in runs.items():
        ops = [c["op"] for c in r.collectives_per_layer]
        expected = ["all_reduce"] if tp > 1 else []  # attention's o_proj
        expected += ["all_to_all", "all_to_all"] if ep > 1 else []  # dispatch, combine
        expected += ["all_reduce"] if tp > 1 else []  # the row-parallel w_down
        assert ops == expected
        tokens = 8 // ep  # decode: one position of each of the group's batch/ep sequences
        slots = E * math.ceil(K * tokens / E)  # every expert's capacity C = ceil(k * tokens / E) (models/mixtral.py)
        payload = slots * HIDDEN * ITEMSIZE  # = k * tokens * hidden * itemsize when E divides k * tokens
        for c in r.collectives_per_layer:
            if c["op"] == "all_to_all":
                assert c["payload_bytes"] == payload and c["wire_bytes"] == pytest.approx((ep - 1) / ep * payload)
                assert c["time_s"] == pytest.approx((ep - 1) * h100.scale_up_latency_us * 1e-6
                                                    + c["wire_bytes"] / (h100.scale_up_gbps * 1e9
                                                                         * h100.scale_up_efficiency))
        if ep > 1:
            assert r.prefill["breakdown"]["collective_s"] > 0


def test_exchanges_between_nodes_use_the_network():
    """tp 2 x ep 8 = 16 devices on 8-GPU nodes: rank i of each group talks to rank i of the others, 2 apart."""
    r = serve("mixtral-8x7b", "h100", tp=2, ep=8, batch=8, **RUN)
    links = {c["op"]: c["link"] for c in r.collectives_per_layer}
    assert links == {"all_reduce": "scale_up", "all_to_all": "scale_out"}
    assert r.settings["devices"] == 16


@pytest.mark.parametrize("kwargs, match", [
    ({"ep": 2, "batch": 3}, "--batch 3 does not split over --ep 2"),
    ({"ep": 3, "batch": 6}, "--ep 3 does not divide the 8 experts"),
    ({"ep": 2, "batch": 2, "model": "llama3-8b"}, "no MoE experts"),
    ({"ep": 0, "batch": 2}, "--ep 0"),
    ({"ep": 2, "batch": 4, "pp": 2, "micro_batches": 4}, "more micro-batches than the 2 sequences"),
])
def test_bad_ep_requests_are_one_line_usage_errors(kwargs, match):
    args = {"model": "mixtral-8x7b", **RUN, **kwargs}
    with pytest.raises(UsageError, match=match) as info:
        serve(args.pop("model"), "h100", **args)
    assert "\n" not in str(info.value)


def test_cli_ep():
    out = CliRunner().invoke(cli, ["serve", "mixtral-8x7b", "--target", "h100", "--ep", "2", "--batch", "4",
                                   "--input-len", "16", "--output-len", "3", "--config", "tiny"])
    assert out.exit_code == 0, out.output
    assert "on 2 x h100" in out.output and "ep 2" in out.output
    assert "all_to_all dispatch" in out.output and "all_to_all combine" in out.output


def test_skewed_routing_slows_the_step_to_the_busiest_group(runs):
    uniform = runs[(1, 2)]
    skewed = serve("mixtral-8x7b", "h100", tp=1, ep=2, expert_imbalance=1.5, batch=8, **RUN)
    assert skewed.settings["expert_imbalance"] == 1.5 and "1.5 x the mean tokens" in skewed.notes[-1]
    assert skewed.totals["tpot_s"] > uniform.totals["tpot_s"] and skewed.totals["ttft_s"] > uniform.totals["ttft_s"]
    assert skewed.memory["weights_bytes"] == uniform.memory["weights_bytes"]  # the same experts, more tokens
    tokens = 8 // 2
    slots = math.ceil(1.5 * 2 * math.ceil(K * tokens / E))  # the busiest device's slots per expert
    dispatch = next(c for c in skewed.collectives_per_layer if c["node"].endswith("_dispatch_all_to_all"))
    assert dispatch["payload_bytes"] == (E // 2) * slots * HIDDEN * ITEMSIZE  # what it receives, the larger side
    with pytest.raises(UsageError, match="use it with --ep 2 or more"):
        serve("mixtral-8x7b", "h100", expert_imbalance=1.5, batch=8, **RUN)
    with pytest.raises(UsageError, match="between 1"):
        serve("mixtral-8x7b", "h100", ep=2, expert_imbalance=3.0, batch=8, **RUN)


def test_stages_of_expert_parallel_groups_pack_into_nodes():
    """Megatron's order (tp innermost, then ep, pp outermost): a stage is tp * ep devices, the ep groups of one
    stage tp apart. 16 devices on 8-GPU nodes: pp 2 x ep 8 sends between the stages over the network and exchanges
    experts inside a node; tp 2 x ep 8 exchanges across nodes."""
    h100 = load_target("h100")
    r = serve("mixtral-8x7b", "h100", tp=1, pp=2, ep=8, batch=8, **RUN)
    assert r.settings["devices"] == 16
    assert {c["link"] for c in r.collectives_per_layer} == {"scale_up"}
    send = r.decode["samples"][0]["pipeline"]["send_s"][0]
    boundary = 8 // 8 * 1 * HIDDEN * ITEMSIZE  # one sequence's token, hidden wide, per device
    assert send == pytest.approx(h100.scale_out_latency_us * 1e-6 + boundary / (h100.scale_out_gbps * 1e9))
    r = serve("mixtral-8x7b", "h100", tp=2, pp=1, ep=8, batch=8, **RUN)
    assert {c["op"]: c["link"] for c in r.collectives_per_layer} == {"all_reduce": "scale_up", "all_to_all": "scale_out"}
