"""Terminal output a person reads (issue 17): at 80 and 120 columns, and piped, every table of `analyze`,
`whatif`, `correlate`, `targets` and `models` fits the width, no cell is cut (`…`), and every number keeps
its digits and its unit on one line; columns of least value are left out instead, and named. Long times
read in ms and s, target figures in SI units, and a time change that is float noise reads 0."""

from __future__ import annotations

import json
import re

import pytest
from rich.console import Console

from graphperf import cli, models
from graphperf.cli import main
from graphperf.report.diff import Delta, ReportDiff
from graphperf.report.units import seconds, si
from graphperf.target import list_targets, load_target

TINY = ["gpt2", "--config", "tiny", "--dtype", "float32"]
WIDTHS = [80, 120]


def _run_at(width, monkeypatch, capsys, *argv) -> str:
    """`graphperf ARGV` printed on a console `width` columns wide; its stdout."""
    monkeypatch.setattr(cli, "_console", lambda file=None: Console(file=file, width=width))
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _fits(out: str, width: int) -> None:
    lines = out.splitlines()
    assert lines and max(len(line) for line in lines) <= width, max(lines, key=len)
    assert "…" not in out


def _intact(quantity: str, out: str) -> None:
    """`quantity` (`151 us`, `4.2 MFLOP`) on one line of `out`."""
    assert any(quantity in line for line in out.splitlines()), quantity


@pytest.fixture(scope="module")
def report_doc():
    from graphperf import analyze

    return json.loads(analyze("gpt2", config="tiny", dtype="float32").to_json())


@pytest.mark.parametrize("width", WIDTHS)
def test_analyze_fits_the_width_and_keeps_every_number(width, report_doc, monkeypatch, capsys):
    out = _run_at(width, monkeypatch, capsys, "analyze", *TINY)
    _fits(out, width)
    totals = report_doc["totals"]
    _intact(f"{seconds(totals['latency_s'])} ({totals['mode']} mode)", out)
    _intact(f"device idle {seconds(totals['idle_s'])}", out)
    for row in report_doc["by_op"]:
        for q in (si(row["flops"], "FLOP"), si(row["bytes"], "B"), seconds(row["latency_s"])):
            _intact(q, out)
    top = sorted((n for n in report_doc["nodes"] if n["latency_s"] is not None), key=lambda n: -n["latency_s"])[:10]
    for node in top:
        _intact(seconds(node["latency_s"]), out)
        _intact(si(node["flops"], "FLOP"), out)
    if width == 80:  # the module path goes first, and the caption says so
        assert "not shown at 80 columns: module" in " ".join(out.split())


@pytest.mark.parametrize("width", WIDTHS)
def test_whatif_fits_the_width_and_keeps_every_number(width, monkeypatch, capsys):
    argv = ["whatif", *TINY, "--fuse", "auto", "--precision", "weights=fp8", "--sweep", "hbm_gbps=1000:3000:1000"]
    doc = json.loads(_run_at(width, monkeypatch, capsys, *argv, "--format", "json"))
    out = _run_at(width, monkeypatch, capsys, *argv)
    _fits(out, width)
    for side in ("before", "after"):
        _intact(seconds(doc[side]["totals"]["latency_s"]), out)
    for row in doc["sweep"]["rows"]:
        _intact(seconds(row["latency_s"]), out)
        _intact(seconds(row["memory_s"]), out)
    latency = doc["diff"]["totals"]["latency_s"]
    assert latency["delta"] < 0 and "latency change" in " ".join(out.split())
    assert not re.search(r"\de-\d", out), "float noise printed as a time change"


@pytest.fixture(scope="module")
def correlation(tmp_path_factory):
    from graphperf.correlate import correlate_onnx, profile_onnx
    from tests.test_correlate import _mlp

    d = tmp_path_factory.mktemp("width")
    model = _mlp(d / "mlp.onnx")
    prof = profile_onnx(model, str(d / "mlp.profile.json"), dims={"batch": 64}, runs=2, warmup=1)
    return correlate_onnx(model, prof, load_target("host"), dims={"batch": 64})


@pytest.mark.parametrize("width", WIDTHS)
def test_correlate_fits_the_width_and_shows_times_with_units(width, correlation):
    from graphperf.correlate.table import render_correlation

    console = Console(width=width, record=True)
    render_correlation(correlation, console)
    out = console.export_text()
    _fits(out, width)
    s = correlation.stats
    _intact(f"projected {seconds(s['projected_total_s'])}, measured {seconds(s['measured_total_s'])}", out)
    for r in correlation.outliers(10):
        _intact(seconds(r.projected_s), out)
        _intact(seconds(r.measured_s), out)


def test_correlate_prints_long_times_in_ms_and_s():
    from graphperf.correlate.table import step_lines

    lines = step_lines({"measured_kernel_s": 0.3592997, "projected_device_s": 1.25, "device_error": 2.48,
                        "measured_wall_s": None})
    assert lines == ["device time per step: projected 1.25 s, measured 359 ms of kernels, error +248.0%"]


@pytest.mark.parametrize("width", WIDTHS)
def test_targets_fit_the_width_in_si_units(width, monkeypatch, capsys):
    out = _run_at(width, monkeypatch, capsys, "targets")
    _fits(out, width)
    for t in (load_target(name) for name in list_targets()):
        _intact(t.name, out)
        _intact(si(t.hbm_gbps * 1e9, "B/s"), out)
        _intact(si(t.vector_fp32_tflops * 1e12, "FLOP/s"), out)
    assert not re.search(r"\d\.\d{4,}|\de[+-]\d|\d{7,}", out), "a raw float"


def test_a_target_row_rounds_to_three_digits_in_units():
    from graphperf.report.catalog import target_row

    t = load_target("h100", {"launch_overhead_us": "0.7801000000001", "hbm_gbps": "3350.0000001"})
    name, _, bf16, fp32, hbm, eff, launch, calibrated = target_row(t)
    assert (name, bf16, hbm, launch, calibrated) == ("h100", si(t.matrix_bf16_tflops * 1e12, "FLOP/s"), "3.35 TB/s",
                                                     "780 ns", "no")
    assert bf16.endswith(" TFLOP/s") and fp32.endswith(" TFLOP/s") and re.fullmatch(r"(\d\.\d\d/){2}\d\.\d\d", eff)


@pytest.mark.parametrize("width", WIDTHS)
def test_models_fit_the_width_and_keep_numbers_with_their_words(width, monkeypatch, capsys):
    out = _run_at(width, monkeypatch, capsys, "models")
    _fits(out, width)
    for spec in models.list_models():
        _intact(spec.name, out)
        for word, number in re.findall(r"([A-Za-z]+) (\d+)\b", spec.description):  # `vocab 50257`, `12 layers`
            _intact(f"{word} {number}", out)


def test_piped_output_fits_the_console_it_chose(capsys):
    for command in ("targets", "models"):
        assert main([command]) == 0
        out = capsys.readouterr().out
        _fits(out, cli._console().width)


def test_wrap_keeps_a_quantity_with_its_unit_and_cuts_names_after_separators():
    from graphperf.report.table import wrap

    assert wrap("device 115 us, host issue 0, device idle 36.4 us, wall 151 us", 30).splitlines() == [
        "device 115 us, host issue 0,", "device idle 36.4 us,", "wall 151 us"]
    assert wrap("blocks.0.mlp_proj", 10).splitlines() == ["blocks.0.", "mlp_proj"]
    assert wrap("  a (b): 3.25 ms", 40) == "  a (b): 3.25 ms"  # the indent stays


def test_a_time_change_that_is_float_noise_reads_zero():
    from graphperf.report.units import delta_seconds

    assert delta_seconds(-1.03e-16) == "0" and delta_seconds(0.0) == "0" and delta_seconds(None) == "?"
    assert delta_seconds(-2.6e-5) == "-26 us" and delta_seconds(1.5e-3) == "+1.5 ms"
    label = {"model": "m", "target": "t"}
    totals = {k: Delta(0.5, 0.5) for k in ("flops", "bytes", "weight_bytes", "peak_activation_bytes", "coverage")}
    noisy = ReportDiff(label, label, {**totals, "latency_s": Delta(1.5e-4, 1.5e-4 + 1.03e-16)}, [], {})
    line = next(line for line in str(noisy).splitlines() if "latency_s" in line)
    assert line.split()[1:] == ["150", "us", "->", "150", "us", "(0,", "x1)"]
    moved = ReportDiff(label, label, {**totals, "latency_s": Delta(1.5e-4, 1.24e-4)}, [], {})
    assert "150 us -> 124 us (-26 us, x0.827)" in str(moved)
