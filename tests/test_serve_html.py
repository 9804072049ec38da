"""The serve page (graphperf/serve/html.py): the figures of `ServeResult.to_dict()` on one self-contained page,
``graphperf serve ... -o page.html``, and the page in a headless Chromium (tests/e2e/browser.py).

Expected strings are formatted from the result's dict (`seconds`, `si`), never written as numbers here.
"""

from __future__ import annotations

import functools
import re
import time
from html import unescape

import pytest
from click.testing import CliRunner

from graphperf.cli import cli, main
from graphperf.report.html_assets import pct
from graphperf.report.units import seconds, si
from graphperf.serve import serve
from graphperf.serve.html import render_serve_html

from .e2e.browser import browser  # noqa: F401 (the module-scoped headless Chromium fixture)

TINY = dict(batch=2, input_len=32, output_len=8, config="tiny")
PARTS = ("compute_s", "memory_s", "collective_s", "overhead_s", "pipeline_send_s")


@functools.lru_cache(maxsize=None)
def _result(case: str) -> dict:
    if case == "tp2":
        return serve("llama3-8b", "h100", tp=2, usd_per_hour=3.0, **TINY).to_dict()
    if case == "pp2":
        return serve("llama3-8b", "h100", tp=2, pp=2, micro_batches=2, **TINY).to_dict()
    # one device of 210 kB: the tiny model at tp 1 needs more, at tp 2 it fits (found by the projection)
    return serve("llama3-8b", "h100", tp=1, overrides={"memory_gb": 0.00021}, **TINY).to_dict()


def result(case: str) -> dict:
    import copy

    return copy.deepcopy(_result(case))


def section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start:page.index("</section>", start)]


def text_of(html: str) -> str:
    """The visible text: tags, styles and scripts removed, entities decoded."""
    html = re.sub(r"<(style|script)>.*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def steps_of(d: dict) -> list[tuple[float, dict]]:
    return [(d["prefill"]["latency_s"], d["prefill"]["breakdown"])] + [
        (s["latency_s"], s["breakdown"]) for s in d["decode"]["samples"]]


# -- the figures --------------------------------------------------------------------------------


def test_title_names_the_target_tag_and_every_setting():
    d = result("pp2")
    title = re.search(r"<h1>(.*?)</h1>", render_serve_html(d)).group(1)
    s = d["settings"]
    for word in (d["model"], d["target"], f"tp {s['tp']}", f"pp {s['pp']}", f"{s['micro_batches']} micro-batches",
                 f"batch {s['batch']}", f"{s['input_len']} in", f"{s['output_len']} out", s["dtype"], s["kv_dtype"],
                 f"{s['mode']} mode"):
        assert word in title, word


def test_totals_are_the_dicts_with_units():
    d = result("tp2")
    t = d["totals"]
    summary = text_of(section(render_serve_html(d), "summary"))
    assert seconds(t["ttft_s"]) in summary and seconds(t["tpot_s"]) in summary and seconds(t["e2e_s"]) in summary
    assert f"{t['output_tokens_per_s']:,.0f} tokens/s" in summary
    assert f"{t['output_tokens_per_s_per_device']:,.0f} tokens/s per device" in summary
    assert f"{t['usd_per_million_tokens']:.3f} USD per million output tokens" in summary
    assert f"{si(t['memory_per_device_bytes'], 'B')} of {si(d['memory']['usable_bytes'], 'B')} usable" in summary


def test_expert_parallel_is_in_the_title_and_its_all_to_all_in_the_collectives():
    d = serve("mixtral-8x7b", "h100", tp=1, ep=2, batch=2, input_len=16, output_len=4, config="tiny").to_dict()
    page = render_serve_html(d)
    assert f"ep {d['settings']['ep']}" in re.search(r"<h1>(.*?)</h1>", page).group(1)
    coll = text_of(section(page, "collectives"))
    assert all(c["op"] in coll and c["module"] in coll for c in d["collectives_per_layer"])
    assert "dispatch layers.0.mlp" in coll and "combine layers.0.mlp" in coll
    kv = d["settings"]["batch"] // d["settings"]["ep"]
    assert f"one expert-parallel group's ({kv} sequences)" in text_of(section(page, "memory"))


def test_sequence_parallel_and_skewed_routing_are_in_the_title():
    d = serve("mixtral-8x7b", "h100", tp=2, sp=True, ep=2, expert_imbalance=1.5, batch=4, input_len=16,
              output_len=4, config="tiny").to_dict()
    title = re.search(r"<h1>(.*?)</h1>", render_serve_html(d)).group(1)
    assert "sequence parallel" in title and "busiest 1.5 x mean" in title


def test_no_price_no_cost_row():
    d = result("pp2")
    assert d["totals"]["usd_per_million_tokens"] is None and "USD" not in render_serve_html(d)


@pytest.mark.parametrize("case", ["tp2", "pp2"])
def test_step_bars_and_rows_sum_to_the_step_latency(case):
    d = result(case)
    steps = section(render_serve_html(d), "steps")
    rows = re.findall(r"<tr>(.*?)</tr>", steps.split("<h3>")[0], flags=re.S)[1:]  # the steps table, no head
    assert len(rows) == len(steps_of(d)) == 1 + len(d["decode"]["samples"])
    parts = [k for k in PARTS if k != "pipeline_send_s" or d["settings"]["pp"] > 1]
    for row, (latency_s, b) in zip(rows, steps_of(d)):
        assert sum(b[k] for k in PARTS) == pytest.approx(latency_s, rel=1e-12)  # the dict's own promise
        keys = [float(v) for v in re.findall(r'data-v="([^"]+)"', row)]
        assert keys[0] == pytest.approx(latency_s, rel=1e-5)
        assert sum(keys[1:1 + len(parts)]) == pytest.approx(latency_s, rel=1e-5)
        assert seconds(latency_s) in row
    # each bar's label is its segments' sum, and that is the step's latency
    totals = re.findall(r'<text x="[\d.]+" y="\d+">([^<]+)</text>', steps.split("</svg>")[0])
    assert totals == [seconds(lat) for lat, _ in steps_of(d)]


def test_pipeline_shows_the_bubble_stages_and_sends():
    d = result("pp2")
    page = render_serve_html(d)
    steps = text_of(section(page, "steps"))
    assert "pipeline send" in steps and pct(d["prefill"]["breakdown"]["pipeline_bubble_fraction"]) in steps
    p = d["prefill"]["pipeline"]
    assert all(seconds(v) in steps for v in p["stage_s"]) and seconds(sum(p["send_s"])) in steps
    assert all(s["pipeline"].get("schedule", "") in steps for s in [d["prefill"], *d["decode"]["samples"]])
    memory = text_of(section(page, "memory"))
    assert all(f"stage {i}" in memory and si(v, "B") in memory for i, v in enumerate(d["memory"]["per_stage_bytes"]))


def test_one_device_has_no_pipeline_columns():
    steps = text_of(section(render_serve_html(result("tp2")), "steps"))
    assert "pipeline send" not in steps and "bubble" not in steps


def test_decode_chart_has_one_mark_per_sample_and_says_it_interpolates():
    d = result("tp2")
    decode = section(render_serve_html(d), "decode")
    assert decode.count('<circle class="mark s0"') == len(d["decode"]["samples"])
    assert "interpolated linearly" in decode and seconds(d["decode"]["total_s"]) in decode
    assert all(f"at {s['kv_len']}: {seconds(s['latency_s'])}" in decode for s in d["decode"]["samples"])


def test_memory_and_collectives_tables():
    d = result("tp2")
    page = render_serve_html(d)
    memory, m = text_of(section(page, "memory")), d["memory"]
    for key in ("weights_bytes", "kv_cache_bytes", "activations_bytes", "usable_bytes", "capacity_bytes"):
        assert si(m[key], "B") in memory, key
    coll = section(page, "collectives")
    rows = re.findall(r"<tr>(.*?)</tr>", coll, flags=re.S)[1:]
    assert len(rows) == len(d["collectives_per_layer"]) > 0
    for row, c in zip(rows, d["collectives_per_layer"]):
        text = text_of(row)
        for word in (c["op"], c["module"], si(c["payload_bytes"], "B"), si(c["wire_bytes"], "B"), c["link"],
                     seconds(c["time_s"])):
            assert word in text, word


def test_notes_and_escaping():
    d = result("tp2")
    d["model"], d["notes"] = "m<&>", d["notes"] + ["a <b> & c"]
    page = render_serve_html(d)
    assert "m&lt;&amp;&gt;" in page and "<b> &" not in page and "a &lt;b&gt; &amp; c" in section(page, "notes")


def test_deterministic():
    d = result("tp2")
    assert render_serve_html(d) == render_serve_html(result("tp2"))


# -- a configuration that does not fit ------------------------------------------------------------


def assert_no_missing_figure(page: str) -> None:
    text = text_of(page)
    assert not re.search(r"\b(None|nan|NaN|inf|null)\b", text), re.search(r".{40}\b(None|nan|null)\b.{40}", text)


def test_not_fitting_says_so_and_what_would_fit():
    d = result("nofit")
    assert not d["totals"]["fits"] and d["totals"]["ttft_s"] is None
    page = render_serve_html(d)
    assert "Does not fit" in page and 'id="steps"' not in page and 'id="decode"' not in page
    fit = text_of(section(page, "fit"))
    m = d["memory"]
    assert f"tp {m['smallest_tp_that_fits']}" in fit and f"pp {m['smallest_pp_that_fits_estimate']}" in fit
    assert d["totals"]["max_batch_that_fits"] == 0 and "none: the weights alone exceed" in fit
    assert "ttft" not in text_of(page) and "tokens/s" not in text_of(page)
    assert_no_missing_figure(page)
    # no number cell shows 0 for a figure the result lacks
    assert not re.search(r"<td[^>]*>\s*0\s*</td>", page)


def test_not_fitting_without_any_fit_says_none():
    d = result("nofit")
    d["memory"].update(smallest_tp_that_fits=None, smallest_pp_that_fits_estimate=None)
    d["totals"]["max_batch_that_fits"] = None
    fit = text_of(section(render_serve_html(d), "fit"))
    assert "none (no tp that divides the heads fits)" in fit and "none (more stages than layers)" in fit
    assert "not bounded by memory" in fit
    assert_no_missing_figure(render_serve_html(d))


@pytest.mark.slow
def test_full_size_model_on_one_device_is_not_projected_and_returns_fast():
    start = time.perf_counter()
    d = serve("llama3-70b", "h100", tp=1, batch=1, input_len=2048, output_len=256).to_dict()
    assert time.perf_counter() - start < 60  # captured and sized, not projected step by step
    page = render_serve_html(d)
    assert not d["totals"]["fits"] and "Does not fit" in page
    assert f"tp {d['memory']['smallest_tp_that_fits']}" in text_of(section(page, "fit"))
    assert_no_missing_figure(page)


# -- the command ----------------------------------------------------------------------------------


ARGS = ["serve", "llama3-8b", "--config", "tiny", "--tp", "2", "--batch", "2", "--input-len", "32",
        "--output-len", "8"]


def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "page.html"
    res = CliRunner().invoke(cli, [*ARGS, "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "llama3-8b" in text and 'id="steps"' in text
    assert f"wrote {out} (html)" in res.output


def test_cli_html_to_a_pipe_and_a_contradicting_extension(tmp_path, capsys):
    piped = CliRunner().invoke(cli, [*ARGS, "--format", "html"])
    assert piped.exit_code == 0 and piped.output.startswith("<!DOCTYPE html>")
    assert main([*ARGS, "--format", "json", "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "extension says html" in err and len(err.strip().splitlines()) == 1


# -- in a headless Chromium -----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["tp2", "pp2", "nofit"])
def test_serve_page_in_headless_chromium(browser, tmp_path, case):
    path = tmp_path / f"serve-{case}.html"
    path.write_text(render_serve_html(result(case)), encoding="utf-8")
    page = browser.open(path)
    assert page.problems == []
    root = re.match(r"<!DOCTYPE html><html([^>]*)>", page.dom).group(1)
    assert 'data-gp-status="ok"' in root and "data-gp-errors" not in root, root
    nojs = browser.open(path, javascript=False)
    assert nojs.problems == [] and "data-gp-status" not in re.match(r"<!DOCTYPE html><html([^>]*)>", nojs.dom).group(1)
    assert ("Does not fit" in nojs.dom) == (case == "nofit")


def test_one_output_token_has_no_decode_section_and_no_tpot():
    d = serve("llama3-8b", "h100", tp=1, pp=2, batch=2, input_len=32, output_len=1, config="tiny").to_dict()
    page = render_serve_html(d)
    assert d["totals"]["tpot_s"] is None and "tpot" not in page and 'id="decode"' not in page
    assert seconds(d["totals"]["ttft_s"]) in section(page, "steps")
    assert_no_missing_figure(page)
