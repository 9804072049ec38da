"""graphperf serve --requests: offline throughput of equal requests with a cap on those in flight
(graphperf/serve/offline.py), checked against generations projected one by one with `serve`."""

import pytest
from click.testing import CliRunner

from graphperf.cli import cli, main
from graphperf.errors import UsageError
from graphperf.serve import serve, serve_requests
from graphperf.serve.offline import concurrency
from graphperf.target import load_target

RUN = dict(config="tiny", input_len=16, output_len=4)


def test_requests_run_in_full_waves_then_the_rest():
    r = serve_requests("llama3-8b", "h100", requests=5, max_batch=2, usd_per_hour=2.0, **RUN)
    wave, rest = (serve("llama3-8b", "h100", batch=b, **RUN).totals["e2e_s"] for b in (2, 1))
    total = 2 * wave + rest
    assert r.offline["concurrency"] == 2 and r.offline["waves"] == 3 and r.offline["last_wave_batch"] == 1
    assert r.totals["e2e_s"] == pytest.approx(total) == r.offline["total_s"]
    assert r.totals["output_tokens_per_s"] == pytest.approx(5 * RUN["output_len"] / total)
    assert r.offline["total_tokens_per_s"] == pytest.approx(5 * (RUN["input_len"] + RUN["output_len"]) / total)
    assert r.totals["usd_per_million_tokens"] == pytest.approx(2.0 / 3600 / r.totals["output_tokens_per_s"] * 1e6)
    assert r.settings["batch"] == 2  # the full wave's generation: its ttft, tpot and memory
    assert r.totals["ttft_s"] == serve("llama3-8b", "h100", batch=2, **RUN).totals["ttft_s"]
    assert r.to_dict()["offline"] == r.offline


def test_without_a_cap_all_requests_fly_together_when_they_fit():
    r = serve_requests("llama3-8b", "h100", requests=3, **RUN)
    assert r.offline["concurrency"] == 3 and r.offline["waves"] == 1
    assert r.totals["e2e_s"] == pytest.approx(serve("llama3-8b", "h100", batch=3, **RUN).totals["e2e_s"])


def test_the_memory_caps_the_sequences_in_flight():
    small = load_target("h100").with_overrides(memory_gb="0.0004")  # a few sequences of the tiny model
    fits = serve("llama3-8b", small, batch=1, **RUN).totals["max_batch_that_fits"]
    assert 1 <= fits < 50
    r = serve_requests("llama3-8b", small, requests=50, **RUN)
    assert r.offline["concurrency"] == fits and r.fits
    assert "what the memory holds" in r.notes[-1]


def test_concurrency_is_the_smallest_cap_and_a_multiple_of_ep():
    assert concurrency(1000, 384, 2804) == 384
    assert concurrency(1000, None, 175) == 175
    assert concurrency(100, 384, 2804) == 100
    assert concurrency(1000, 3000, 451, ep=4) == 448


def test_bad_requests_are_one_line_errors():
    with pytest.raises(UsageError, match="leave --batch out"):
        serve_requests("llama3-8b", "h100", requests=4, batch=2, **RUN)
    with pytest.raises(UsageError, match="--requests 0"):
        serve_requests("llama3-8b", "h100", requests=0, **RUN)
    with pytest.raises(UsageError, match="--max-batch 0"):
        serve_requests("llama3-8b", "h100", requests=4, max_batch=0, **RUN)


def test_cli_requests(capsys):
    args = ["serve", "llama3-8b", "--config", "tiny", "--input-len", "16", "--output-len", "4"]
    out = CliRunner().invoke(cli, [*args, "--requests", "5", "--max-batch", "2"])
    assert out.exit_code == 0, out.output
    assert "5, 2 in flight, 3 wave(s)" in out.output and "end to end (all requests)" in out.output
    for extra, match in ((["--requests", "5", "--batch", "2"], "leave --batch out"),
                         (["--max-batch", "2"], "give --requests N")):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1


def test_the_page_names_the_requests_and_the_waves():
    from graphperf.serve.html import render_serve_html

    d = serve_requests("llama3-8b", "h100", requests=5, max_batch=2, **RUN).to_dict()
    page = render_serve_html(d)
    assert "5, 2 in flight, 3 wave(s)" in page and "end to end (all requests)" in page


def test_pipelined_requests_keep_a_micro_batch_per_stage_and_the_tail_runs_fewer():
    r = serve_requests("llama3-8b", "h100", requests=5, max_batch=4, pp=2, micro_batches=2, **RUN)
    assert r.offline["concurrency"] == 4 and r.offline["last_wave_batch"] == 1
    full = serve("llama3-8b", "h100", batch=4, pp=2, micro_batches=2, **RUN).totals["e2e_s"]
    tail = serve("llama3-8b", "h100", batch=1, pp=2, micro_batches=1, **RUN).totals["e2e_s"]
    assert r.totals["e2e_s"] == pytest.approx(full + tail)
