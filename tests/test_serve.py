"""graphperf serve: a whole generation on tp devices (graphperf/serve/), on the tiny llama config."""

import json

import pytest
from click.testing import CliRunner

from graphperf.cli import cli, main
from graphperf.errors import UsageError
from graphperf.serve import serve
from graphperf.serve.generation import _interpolated_sum, _sample_lengths
from graphperf.target import load_target

TINY = dict(config="tiny", batch=2, input_len=32, output_len=9)
TOTALS = {"ttft_s", "tpot_s", "e2e_s", "output_tokens_per_s", "output_tokens_per_s_per_device",
          "memory_per_device_bytes", "fits", "max_batch_that_fits", "usd_per_million_tokens"}


@pytest.fixture(scope="module")
def tp2():
    return serve("llama3-8b", "h100", tp=2, usd_per_hour=2.0, **TINY)


def test_totals_are_consistent(tp2):
    t = tp2.totals
    assert set(t) == TOTALS and t["fits"] is True
    steps = TINY["output_len"] - 1
    assert t["e2e_s"] == pytest.approx(t["ttft_s"] + t["tpot_s"] * steps)
    assert t["output_tokens_per_s"] == pytest.approx(TINY["batch"] * TINY["output_len"] / t["e2e_s"])
    assert t["output_tokens_per_s_per_device"] == pytest.approx(t["output_tokens_per_s"] / 2)
    assert t["usd_per_million_tokens"] == pytest.approx(2.0 * 2 / 3600 / t["output_tokens_per_s"] * 1e6)
    m = tp2.memory
    assert t["memory_per_device_bytes"] == m["weights_bytes"] + m["kv_cache_bytes"] + m["activations_bytes"]
    d = json.loads(json.dumps(tp2.to_dict()))
    assert d["schema"] == "graphperf.serve/1" and d["totals"] == pytest.approx(t)


def test_the_decode_steps_grow_with_the_context_and_are_sampled_at_the_ends(tp2):
    samples = tp2.decode["samples"]
    first, last = TINY["input_len"] + 1, TINY["input_len"] + TINY["output_len"] - 1
    assert samples[0]["kv_len"] == first and samples[-1]["kv_len"] == last
    assert all(a["latency_s"] <= b["latency_s"] for a, b in zip(samples, samples[1:]))


def test_interpolation_is_exact_on_a_line():
    points = [(x, 3.0 + 0.5 * x) for x in _sample_lengths(10, 41, 4)]
    assert [x for x, _ in points] == [10, 20, 31, 41]
    assert _interpolated_sum(points, 10, 41) == pytest.approx(sum(3.0 + 0.5 * x for x in range(10, 42)))


def test_sampled_decode_is_close_to_every_step_projected():
    every = serve("llama3-8b", "h100", tp=2, kv_samples=TINY["output_len"] - 1, **TINY)
    sampled = serve("llama3-8b", "h100", tp=2, kv_samples=2, **TINY)
    assert len(every.decode["samples"]) == TINY["output_len"] - 1
    assert sampled.decode["total_s"] == pytest.approx(every.decode["total_s"], rel=0.01)


def test_collectives_per_layer_are_two_all_reduces(tp2):
    per_layer = tp2.collectives_per_layer
    h100 = load_target("h100")
    assert [c["op"] for c in per_layer] == ["all_reduce", "all_reduce"]
    for c in per_layer:
        s = TINY["batch"] * 64 * 2  # [B, 1, hidden] bf16
        assert c["payload_bytes"] == s and c["wire_bytes"] == 2 * (2 - 1) / 2 * s
        assert c["time_s"] == pytest.approx(2 * h100.scale_up_latency_us * 1e-6  # device time; no host base in a replay
                                            + s / (h100.scale_up_gbps * 1e9 * h100.scale_up_efficiency))
    assert tp2.prefill["breakdown"]["collective_s"] > 0


def test_tp_halves_the_weights_and_kv_cache():
    one = serve("llama3-8b", "h100", tp=1, **TINY)
    two = serve("llama3-8b", "h100", tp=2, **TINY)
    assert two.memory["kv_cache_bytes"] == one.memory["kv_cache_bytes"] / 2
    assert two.memory["weights_bytes"] < 0.6 * one.memory["weights_bytes"]
    assert one.collectives_per_layer == [] and one.prefill["breakdown"]["collective_s"] == 0


def test_fp8_serves_fp8_linear_layers_with_a_bf16_kv_cache():
    """W8A8: the decoder's linear weights in fp8 (half their bf16 bytes); embedding, LM head and norms in bf16."""
    from graphperf.serve.graphs import capture_phase

    bf16 = serve("llama3-8b", "h100", tp=1, **TINY)
    fp8 = serve("llama3-8b", "h100", tp=1, dtype="fp8", **TINY)
    assert fp8.settings["dtype"] == "float8_e4m3fn" and fp8.settings["kv_dtype"] == "bfloat16"
    g = capture_phase("llama3-8b", "tiny", "decode", TINY["batch"], TINY["input_len"] + 1, "bfloat16")
    linear = sum(g.values[n.inputs[1]].type.nbytes for n in g.nodes if n.op.name == "matmul"
                 and g.values[n.inputs[1]].kind == "weight" and not n.module.startswith("lm_head"))
    assert 0 < linear < bf16.memory["weights_bytes"]
    assert fp8.memory["weights_bytes"] == bf16.memory["weights_bytes"] - linear / 2
    assert fp8.memory["kv_cache_bytes"] == bf16.memory["kv_cache_bytes"]
    fp8_kv = serve("llama3-8b", "h100", tp=1, dtype="fp8", kv_dtype="fp8", **TINY)
    assert fp8_kv.memory["kv_cache_bytes"] == bf16.memory["kv_cache_bytes"] / 2


def test_a_model_that_does_not_fit_is_reported_not_projected():
    small = load_target("h100").with_overrides(memory_gb="0.0002")  # 200 kB
    r = serve("llama3-8b", small, tp=1, **TINY)
    assert r.fits is False and r.totals["ttft_s"] is None and r.totals["e2e_s"] is None and r.prefill is None
    assert r.totals["max_batch_that_fits"] is not None
    assert "smallest_tp_that_fits" in r.memory and any("does not fit" in n for n in r.notes)
    fit_tp = r.memory["smallest_tp_that_fits"]
    if fit_tp is not None:
        assert serve("llama3-8b", small, tp=fit_tp, **TINY).fits


@pytest.mark.parametrize("kwargs, match", [({"tp": 3}, "does not divide"), ({"model": "resnet50"}, "serve"),
                                           ({"input_len": 250}, "positions"), ({"batch": 0}, "batch")])
def test_bad_requests_are_one_line_usage_errors(kwargs, match):
    args = {"model": "llama3-8b", "tp": 1, **TINY, **kwargs}
    with pytest.raises(UsageError, match=match) as info:
        serve(args.pop("model"), "h100", **args)
    assert "\n" not in str(info.value)


def test_a_target_without_link_figures_refuses_tp():
    with pytest.raises(UsageError, match="scale_up_gbps"):
        serve("llama3-8b", "l4", tp=2, **TINY)


def test_cli_table_and_json():
    runner = CliRunner()
    args = ["serve", "llama3-8b", "--config", "tiny", "--tp", "2", "--batch", "2", "--input-len", "32",
            "--output-len", "9"]
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "ttft" in table.output and "all_reduce after layers.0.attn.o_proj" in table.output
    out = runner.invoke(cli, [*args, "--format", "json", "--usd-per-hour", "3"])
    assert out.exit_code == 0 and json.loads(out.output)["totals"]["usd_per_million_tokens"] > 0


def test_cli_user_errors_are_one_line_exit_2(capsys):
    assert main(["serve", "llama3-8b", "--config", "tiny", "--tp", "3"]) == 2
    err = capsys.readouterr().err
    assert "does not divide" in err and err.count("\n") == 1


def test_pipeline_parallel_halves_the_layers_per_device_and_adds_a_send():
    one = serve("llama3-8b", "h100", tp=1, **TINY)
    two = serve("llama3-8b", "h100", tp=1, pp=2, usd_per_hour=1.0, **TINY)
    assert two.settings["devices"] == 2 and len(two.memory["per_stage_bytes"]) == 2
    assert two.memory["kv_cache_bytes"] == one.memory["kv_cache_bytes"] / 2
    assert two.memory["weights_bytes"] < one.memory["weights_bytes"]
    h100 = load_target("h100")
    send = h100.scale_up_latency_us * 1e-6 + TINY["batch"] * 64 * 2 / (h100.scale_up_gbps * 1e9)
    sample = two.decode["samples"][0]
    assert sample["breakdown"]["pipeline_send_s"] == pytest.approx(send)
    assert sample["latency_s"] == pytest.approx(one.decode["samples"][0]["latency_s"] + send, rel=0.05)
    assert two.totals["output_tokens_per_s_per_device"] == pytest.approx(two.totals["output_tokens_per_s"] / 2)


# -- pipeline micro-batches and the scale-out network (issue 14) ------------------------------------------------


def _steps(result):
    return [result.prefill] + result.decode["samples"]


def test_micro_batched_pipeline_prefill_fills_and_drains_and_decode_runs_in_steady_state():
    """u micro-batches through M stages: the prefill sum(stage) + (u-1) * slowest + sends, a decode step
    max(sum(stage) + sends, u * slowest), with the stage times and sends the projection reports, and stage times
    equal to the same stages projected for a batch of one micro-batch."""
    u, m = 2, 2
    split = serve("llama3-8b", "h100", tp=1, pp=m, micro_batches=u, **TINY)
    alone = serve("llama3-8b", "h100", tp=1, pp=m, **{**TINY, "batch": TINY["batch"] // u})
    h100 = load_target("h100")
    assert split.settings["micro_batches"] == u and split.settings["micro_batch_size"] == TINY["batch"] // u
    for step, ref in zip(_steps(split), _steps(alone)):
        p = step["pipeline"]
        stage_s, send_s = p["stage_s"], p["send_s"]
        assert len(stage_s) == m and len(send_s) == m - 1
        assert stage_s == pytest.approx(ref["pipeline"]["stage_s"])  # one micro-batch's stages, projected alone
        assert p["bubble_fraction"] == step["breakdown"]["pipeline_bubble_fraction"]
        if step is split.prefill:
            assert p["schedule"] == "fill-drain"
            assert step["latency_s"] == pytest.approx(sum(stage_s) + (u - 1) * max(stage_s) + sum(send_s))
            assert step["latency_s"] <= (u + m - 1) * max(stage_s) + sum(send_s) + 1e-15  # GPipe's balanced bound
            assert p["bubble_fraction"] == pytest.approx((m - 1) / (u + m - 1))
        else:  # a token per micro-batch every period: its own trip, or the slowest stage serving all u
            assert p["schedule"] == "steady"
            period = max(sum(stage_s) + sum(send_s), u * max(stage_s))
            assert step["latency_s"] == pytest.approx(period)
            assert step["latency_s"] < sum(stage_s) + (u - 1) * max(stage_s) + sum(send_s)  # no barrier per step
            assert p["bubble_fraction"] == pytest.approx(1 - u * sum(stage_s) / (m * period))
    # a send is one micro-batch's boundary activation (batch/u sequences x hidden 64 x bf16) on NVLink (one node)
    sample = split.decode["samples"][0]
    assert sample["pipeline"]["send_s"][0] == pytest.approx(
        h100.scale_up_latency_us * 1e-6 + TINY["batch"] // u * 64 * 2 / (h100.scale_up_gbps * 1e9))
    # the batch as one micro-batch (the default) is the stages in turn, each busy its own stage of the trip
    whole = serve("llama3-8b", "h100", tp=1, pp=m, **TINY)
    p = whole.decode["samples"][0]["pipeline"]
    trip = sum(p["stage_s"]) + sum(p["send_s"])
    assert whole.decode["samples"][0]["latency_s"] == pytest.approx(trip)
    assert p["bubble_fraction"] == pytest.approx(1 - sum(p["stage_s"]) / (m * trip))
    assert p["bubble_fraction"] == pytest.approx((m - 1) / m, rel=0.05)  # the sends are small


def test_pipeline_step_formula_and_bubble():
    from graphperf.serve.generation import bubble_fraction, pipeline_step_s, steady_bubble_fraction, steady_decode_s

    assert pipeline_step_s([2.0, 2.0, 2.0, 2.0], [0.1, 0.1, 0.1], 8) == pytest.approx((8 + 4 - 1) * 2.0 + 0.3)
    assert pipeline_step_s([1.0, 3.0], [0.5], 4) == pytest.approx(1.0 + 3.0 + 3 * 3.0 + 0.5)
    assert bubble_fraction(4, 8) == pytest.approx(3 / 11) and bubble_fraction(1, 1) == 0
    # steady decode: 4 balanced stages, 8 micro-batches in flight: the stages set the period, nobody idles
    assert steady_decode_s([2.0] * 4, [0.1] * 3, 8) == pytest.approx(8 * 2.0)
    assert steady_bubble_fraction([2.0] * 4, 16.0, 8) == pytest.approx(0.0)
    # 2 micro-batches: the trip (8.3) sets the period, each stage idles 1 - 2 * 2 / 8.3
    assert steady_decode_s([2.0] * 4, [0.1] * 3, 2) == pytest.approx(8.3)
    assert steady_bubble_fraction([2.0] * 4, 8.3, 2) == pytest.approx(1 - 4.0 / 8.3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pp=2, micro_batches=3), "more micro-batches"),
    (dict(pp=1, micro_batches=2), "--pp > 1"),
    (dict(pp=2, micro_batches=0), "--micro-batches 0"),
])
def test_bad_micro_batches_are_usage_errors(kwargs, match):
    with pytest.raises(UsageError, match=match):
        serve("llama3-8b", "h100", tp=1, **kwargs, **TINY)


def test_a_send_between_nodes_uses_the_scale_out_figures():
    """Stages in different nodes (one device a node here) send over the target's scale-out network."""
    h100 = load_target("h100").with_overrides(devices_per_node="1")
    r = serve("llama3-8b", h100, tp=1, pp=2, **TINY)
    send = h100.scale_out_latency_us * 1e-6 + TINY["batch"] * 64 * 2 / (h100.scale_out_gbps * 1e9)
    assert r.decode["samples"][0]["pipeline"]["send_s"][0] == pytest.approx(send)
    no_net = h100.with_overrides(scale_out_gbps="none")
    with pytest.raises(UsageError, match="scale_out_gbps"):
        serve("llama3-8b", no_net, tp=1, pp=2, **TINY)


def test_the_bundled_hgx_targets_have_sourced_scale_out_figures():
    for name in ("h100", "h200", "b200"):
        t = load_target(name)
        assert t.scale_out_gbps == 400 / 8  # one 400 Gb/s ConnectX-7 per GPU, GB/s per direction
        assert t.scale_out_latency_us is not None and t.scale_out_efficiency == t.scale_up_efficiency
        assert "transferred from scale_up (no inter-node measurement)" in t.derived["scale_out_efficiency"]
        assert "ConnectX-7" in t.references[t.sources["scale_out_gbps"].split(":", 1)[0]]


@pytest.mark.slow
def test_llama3_405b_tp8_pp2_on_two_h100_nodes_runs_with_sends_on_the_network():
    h100 = load_target("h100")
    r = serve("llama3-405b", "h100", tp=8, pp=2, dtype="fp8", batch=4, input_len=128, output_len=3, kv_samples=2)
    assert r.fits and r.settings["devices"] == 16 and r.totals["tpot_s"] > 0
    hidden, bf16 = 16384, 2  # W8A8: the residual stream between the stages stays in bf16
    for step, tokens in ((r.prefill, 4 * 128), (r.decode["samples"][0], 4)):
        assert step["pipeline"]["send_s"] == pytest.approx(
            [h100.scale_out_latency_us * 1e-6 + tokens * hidden * bf16 / (h100.scale_out_gbps * 1e9)])


def test_cli_micro_batches_reach_the_pipeline(capsys):
    from graphperf.cli import main

    args = ["serve", "llama3-8b", "--config", "tiny", "--tp", "1", "--pp", "2", "--batch", "4", "--input-len", "16",
            "--output-len", "4", "--format", "json"]
    assert main([*args, "--micro-batches", "2"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["micro_batches"] == 2
    assert doc["prefill"]["breakdown"]["pipeline_bubble_fraction"] == (2 - 1) / (2 + 2 - 1)  # (pp - 1) / (u + pp - 1)
    for sample in doc["decode"]["samples"]:  # steady state: the stages' idle share of the period
        p = sample["pipeline"]
        assert p["micro_batches"] == 2 and p["bubble_fraction"] == pytest.approx(
            1 - 2 * sum(p["stage_s"]) / (2 * sample["latency_s"]))

