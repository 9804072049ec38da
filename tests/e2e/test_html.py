"""The HTML report (issue 7): rendered from real reports and opened in headless Chromium.

The browser tests fail, never skip, when Chromium is missing: `make test` installs Debian's
`chromium` and `chromium-driver` first. Set GRAPHPERF_SCREENSHOTS=DIR to keep the screenshots.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct

import onnx
import pytest
from onnx import TensorProto, helper

from graphperf.cli import main
from graphperf.pipeline import ModelRequest, analyze_graph, load_graph
from graphperf.report.html import placeable, render_html
from graphperf.target import load_target

from .browser import Page, browser  # noqa: F401 (browser: the headless Chromium fixture)

EVIL = '<script>alert("x")</script>&'


@functools.lru_cache(maxsize=None)
def _gpt2():
    return load_graph(ModelRequest("gpt2", config="tiny"))


def gpt2_report(target: str = "h100"):
    graph, info = _gpt2()
    return analyze_graph(graph, load_target(target), info)


def expected_points(report) -> int:
    """Counted independently of the renderer: FLOPs, bytes and time all > 0."""
    return sum(1 for r in report.nodes if r.flops and (r.bytes_read + r.bytes_written) > 0 and r.latency_s)


def _mlp_onnx(path, name="mm"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 32])
    w = helper.make_tensor("w", TensorProto.FLOAT, [64, 32], [0.0] * (64 * 32))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name=name),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "mlp", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return str(path)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", png[16:24])


def _html_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<html[^>]*>", dom).group(0)
    return dict(re.findall(r'(data-gp-[a-z-]+)="([^"]*)"', tag))


def _keep(page: Page, tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(page.screenshot_png)
    keep = os.environ.get("GRAPHPERF_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, os.path.join(keep, name))


# -- the page itself (no browser) ---------------------------------------------------------------


def test_page_is_deterministic_self_contained_and_has_every_section():
    report = gpt2_report()
    page = render_html(report)
    assert page == render_html(gpt2_report())
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    for fetch in ("src=", "<link", "@import", "url(", "<iframe"):
        assert fetch not in page, f"{fetch} would load something at view time"
    for anchor in ("totals", "roofline", "breakdown", "top", "unknown", "target", "model", "conventions"):
        assert f'<section id="{anchor}">' in page
    assert page.count('<circle class="pt ') == expected_points(report) == sum(map(placeable, report.nodes)) > 0
    assert f'data-expected-points="{expected_points(report)}"' in page
    # the left-off nodes are counted and explained in the page
    free = sum(1 for r in report.nodes if r.bound == "free")
    no_flops = sum(1 for r in report.nodes if r.flops == 0 and r.bound != "free")
    assert f"{expected_points(report)} of {len(report.nodes)} nodes are plotted" in page
    assert f"{free} are free views" in page and f"{no_flops} move bytes but do no FLOPs" in page
    # the target's peaks and their derated roofs are drawn and labelled
    from graphperf.report.units import si

    t = report.target
    peak = t.matrix_bf16_tflops * 1e12
    assert f"bf16/fp16 matrix peak {si(peak, 'FLOP/s')}" in page
    assert f"bf16 matrix x {t.matrix_efficiency:g} = {si(peak * t.matrix_efficiency, 'FLOP/s')}" in page
    assert "HBM 3.35 TB/s peak" in page and report.target.sources["hbm_gbps"][:40] in page


def test_every_model_string_is_escaped(tmp_path):
    graph, info = load_graph(ModelRequest(_mlp_onnx(tmp_path / "m.onnx", name=EVIL)))
    report = analyze_graph(graph, load_target("h100"), {**info, "description": EVIL})
    for r in report.nodes:
        r.module = EVIL
    report.by_module[0]["name"] = EVIL
    page = render_html(report)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert page.count("<script>") == 1  # the page's own, inline


def test_repr_html_is_a_notebook_fragment():
    frag = gpt2_report()._repr_html_()
    assert frag.startswith('<div class="gp">') and "<html" not in frag and "<script>" in frag


def test_cli_writes_html_and_compares_targets(capsys, tmp_path):
    model = _mlp_onnx(tmp_path / "mlp.onnx")
    out = tmp_path / "one.html"
    assert main(["analyze", model, "--format", "html", "-o", str(out)]) == 0
    assert out.read_text().count("<svg class=\"gp-scatter roofline\"") == 1
    out = tmp_path / "three.html"
    assert main(["analyze", model, "--target", "h100,mi300x,tpu-v5p", "--format", "html", "-o", str(out)]) == 0
    text = out.read_text()
    assert '<section id="comparison">' in text and text.count('<svg class="gp-scatter roofline"') == 3
    for name in ("h100", "mi300x", "tpu-v5p"):
        assert f'<section id="{name}">' in text and f'<section id="{name}-roofline">' in text
    capsys.readouterr()
    for argv, words in ((["--format", "json", "--target", "h100,a100"], "several targets need --format html"),
                        (["--target", "h100,a100"], "several targets need --format html"),
                        (["--format", "html", "--target", "h100,h100"], "h100 given twice"),
                        (["--format", "html", "--target", "h100,,a100"], "empty name"),
                        (["--format", "html", "--target", "h100,h1000"], "h1000")):
        code = main(["analyze", model, *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and words in err[0], (argv, err)


# -- in the browser -----------------------------------------------------------------------------


TOP_FLOPS_AFTER_CLICK = """(() => {
  const table = document.querySelector('#top table');
  const th = [...table.tHead.rows[0].cells].find(c => c.textContent.trim() === 'FLOPs');
  th.click();
  return [...table.tBodies[0].rows].map(r => parseFloat(r.cells[th.cellIndex].dataset.v));
})()"""


def test_report_in_headless_chromium(browser, tmp_path):
    report = gpt2_report()
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    page = browser.open(path, script=TOP_FLOPS_AFTER_CLICK)
    _keep(page, tmp_path, "gpt2-h100.png")
    assert page.problems == []  # no console errors or warnings, no uncaught exceptions
    attrs = _html_attrs(page.dom)
    assert attrs.get("data-gp-status") == "ok" and "data-gp-errors" not in attrs, attrs
    assert attrs["data-gp-points"] == str(expected_points(report))  # one point per placeable node
    assert len(re.findall(r'<circle class="pt ', page.dom)) == expected_points(report)
    assert page.result == sorted(page.result, reverse=True) and len(page.result) > 10  # sorted by FLOPs
    width, height = _png_size(page.screenshot_png)
    assert width == 1400 and height > 3000 and len(page.screenshot_png) > 50_000


def test_static_parts_work_without_javascript(browser, tmp_path):
    report = gpt2_report()
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    page = browser.open(path, javascript=False)
    _keep(page, tmp_path, "gpt2-h100-nojs.png")
    assert page.problems == []
    assert "data-gp-status" not in _html_attrs(page.dom)  # the script did not run
    dom = page.dom
    assert "projected latency" in dom and "coverage" in dom and "100.0%: 43 of 43 nodes" in dom
    top = dom[dom.index('<section id="top">'):dom.index('<section id="unknown">')]
    assert top.count("<tr>") == 1 + sum(1 for r in report.nodes if r.latency_s)
    assert "<th>op</th>" in dom and "matmul" in dom and "blocks.*.c_fc" in dom
    assert len(re.findall(r'<circle class="pt ', dom)) == expected_points(report)
    assert _png_size(page.screenshot_png)[1] > 3000


def test_comparison_page_in_headless_chromium(browser, tmp_path):
    reports = [gpt2_report(t) for t in ("h100", "mi300x", "tpu-v5p")]
    path = tmp_path / "compare.html"
    path.write_text(render_html(reports), encoding="utf-8")
    page = browser.open(path)
    _keep(page, tmp_path, "gpt2-compare.png")
    assert page.problems == []
    attrs = _html_attrs(page.dom)
    assert attrs.get("data-gp-status") == "ok"
    assert attrs["data-gp-points"] == ",".join(str(expected_points(r)) for r in reports)
    for r in reports:
        assert r.target.label in page.dom
