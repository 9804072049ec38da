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


def test_fp8_serves_fp8_weights_with_a_bf16_kv_cache():
    bf16 = serve("llama3-8b", "h100", tp=1, **TINY)
    fp8 = serve("llama3-8b", "h100", tp=1, dtype="fp8", **TINY)
    assert fp8.settings["dtype"] == "float8_e4m3fn" and fp8.settings["kv_dtype"] == "bfloat16"
    assert fp8.memory["weights_bytes"] == bf16.memory["weights_bytes"] / 2
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
