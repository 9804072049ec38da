"""Everyday readability of the HTML pages (issue 17): what sets the time of nodes far below the roofs, a
comparison table that fits the page, what-if noise said as no change, correlate points that share a whole
microsecond kept apart, and yes / no for the target's switches.

Expected figures come from the reports and the targets, computed here without the renderers. One test opens
the comparison page in headless Chromium (it fails, never skips, without it); the rest read the HTML as text.
"""

from __future__ import annotations

import re

from graphperf.correlate.match import Correlation, Row
from graphperf.passes.whatif import whatif
from graphperf.pipeline import ModelRequest, analyze_graph, load_graph
from graphperf.report.html import render_html, target_body
from graphperf.report.html_correlate import render_correlate_html
from graphperf.report.html_whatif import render_whatif_html
from graphperf.target import load_target

from .test_html import _gpt2, _mlp_onnx, browser, gpt2_report, placeable  # noqa: F401  (browser: a fixture)
from .test_html_pages import precision_result


def _rings(page: str) -> dict[str, int]:
    return {kind: len(re.findall(rf'<circle class="pt [a-z0-9]+ ring {kind}"', page)) for kind in ("launch", "floor")}


def _expected_rings(report) -> dict[str, int]:
    """launch: the device waited for the launch longer than the kernel ran (bound overhead); floor: the size-aware
    model's fixed kernel time (device_s - max(compute_s, memory_s)) exceeds the node's work."""
    launch = floor = 0
    for r in filter(placeable, report.nodes):
        work = max(r.compute_s, r.memory_s)
        if r.bound == "overhead":
            launch += 1
        elif report.target.kernel_floor_us is not None and r.device_s - work > work:
            floor += 1
    return {"launch": launch, "floor": floor}


def test_roofline_rings_the_nodes_whose_time_a_launch_or_a_kernel_floor_sets():
    report = gpt2_report("h100")
    t = report.target
    page = render_html(report)
    expected = _expected_rings(report)
    assert expected["launch"] > 0 and expected["floor"] > 0
    assert _rings(page) == expected
    legend = page[page.index('<div class="legend roof-fixed">'):]
    legend = legend[:legend.index("</div>")]
    assert f"launch-bound ({expected['launch']} nodes)" in legend
    assert f"launch_overhead_us = {t.launch_overhead_us:g} us between kernels" in legend
    assert f"floor-bound ({expected['floor']} nodes)" in legend
    assert f"matrix_floor_us = {t.matrix_floor_us:g} us" in legend
    assert f"kernel_floor_row_us = {t.kernel_floor_row_us:g} us" in legend
    assert "no line on this chart can show it" in legend
    # the figures are the target's: another floor and another launch gap change the legend
    graph, info = _gpt2()
    other = analyze_graph(graph, t.with_overrides(kernel_floor_row_us=9.25, launch_overhead_us=1.75), info)
    page = render_html(other)
    assert "kernel_floor_row_us = 9.25 us" in page and "launch_overhead_us = 1.75 us between kernels" in page
    # a plain-roofline target (no kernel floor): only the launch gap sets the time of small nodes
    plain = gpt2_report("mi300x")
    page = render_html(plain)
    assert _rings(page) == _expected_rings(plain) and _rings(page)["floor"] == 0 < _rings(page)["launch"]
    assert f"launch_overhead_us = {plain.target.launch_overhead_us:g} us" in page and "floor-bound" not in page


COMPARISON_WIDTHS = """(() => {
  const table = document.querySelector('#comparison table');
  return [table.scrollWidth, table.closest('.tw').clientWidth, document.documentElement.scrollWidth];
})()"""


def test_comparison_table_fits_a_1400px_page(browser, tmp_path):  # noqa: F811
    reports = [gpt2_report(t) for t in ("h100", "mi300x", "tpu-v5p")]
    page = render_html(reports)
    head = page[page.index('<section id="comparison">'):]
    head = head[:head.index("</thead>")]
    assert '<div class="tw fit">' in head and "<caption" in head  # wrapping headers, explained in the caption
    path = tmp_path / "compare.html"
    path.write_text(page, encoding="utf-8")
    shown = browser.open(path, script=COMPARISON_WIDTHS, width=1400)
    assert shown.problems == []
    table_px, box_px, page_px = shown.result
    assert table_px <= box_px and page_px <= 1400, shown.result  # no horizontal scrolling at 1400 px


def test_whatif_delta_that_is_float_noise_says_no_change(tmp_path):
    graph, info = load_graph(ModelRequest(_mlp_onnx(tmp_path / "mlp.onnx")))
    target = load_target("h100")
    # one ulp more bandwidth: memory time changes by ~1e-22 s, float noise
    result = whatif(graph, target, info, sets={"hbm_gbps": repr(target.hbm_gbps * (1 + 2e-16))})
    d = result.compare().totals["memory_s"]
    assert d.delta and abs(d.delta) < 1e-12 * d.before  # the noise is there in the figures
    page = render_whatif_html(result)
    row = re.search(r"<tr><td>sum of memory time</td>.*?</tr>", page).group(0)
    assert ">no change</td>" in row and "e-" not in re.sub(r'data-v="[^"]*"', "", row)
    assert not re.search(r"[-+]\d[\d.]*e-\d+ [num]?s", page)  # no delta printed as 1e-13 ns anywhere
    assert "No op's latency changed." in page
    # a real case: fp8 weights on a tiny Llama decode step leave matmul's summed latency 1e-20 s off (summation order)
    result = precision_result()
    noise = result.compare().op("matmul")["latency_s"]
    assert noise.delta and abs(noise.delta) < 1e-12 * noise.before
    ops = render_whatif_html(result)
    ops = ops[ops.index('<section id="ops">'):ops.index('<section id="flags">')]
    assert '<td class="mono">matmul</td>' not in ops and "gather" in ops  # gather really changed: it stays


def _correlation(rows: list[Row], fmt: str = "onnxruntime") -> Correlation:
    return Correlation("m", "host", {"format": fmt}, rows, [], [], [], {"rows": len(rows)})


def _cx(page: str) -> list[float]:
    return [float(v) for v in re.findall(r'<circle class="pt [^"]*" cx="([\d.]+)"', page)]


def test_correlate_points_that_share_a_whole_microsecond_are_spread_not_stacked():
    same = [Row(f"n{i}", "Relu", "memory", [f"n{i}"], [f"n{i}_ev"], 2e-6, 3e-6) for i in range(5)]
    alone = Row("big", "MatMul", "compute", ["big"], ["big_ev"], 40e-6, 70e-6)
    page = render_correlate_html(_correlation(same + [alone]))
    xs = _cx(page)
    assert len(xs) == 6 and len(set(xs)) == 6  # five rows at 3 us measured, 2 us projected: five places
    assert page.count("projected 2 us, measured 3 us") == 5  # the tooltips keep the recorded value
    assert "5 points that share a measured value" in page and "+-0.4 us" in page
    # spread inside the resolution step: the five stay closer to each other than to any other decade
    spread = sorted(xs)[:5]
    assert spread[-1] - spread[0] < (max(xs) - min(xs)) / 4
    # a torch.profiler trace measures in fractions of a microsecond: nothing is moved
    kineto = render_correlate_html(_correlation(same + [alone], fmt="kineto"))
    assert len(set(_cx(kineto))) == 2 and "share a measured value" not in kineto


def test_target_table_says_yes_or_no_for_switches():
    target = load_target("h100")
    switches = {k: v for k, v in target.to_dict().items() if isinstance(v, bool)}
    assert {"calibrated", "allow_tf32", "allow_tf32_conv"} <= set(switches)
    body = target_body(target)
    assert ">True<" not in body and ">False<" not in body
    for name, value in switches.items():
        assert re.search(rf"<tr><th>{name}</th><td>{'yes' if value else 'no'}\b", body), name
    assert "<tr><th>allow_tf32</th><td>no: float32 matmuls run on the fp32 vector peak" in body
    on = target_body(target.with_overrides(allow_tf32=True))
    assert "<tr><th>allow_tf32</th><td>yes: float32 matmuls run on TF32 units" in on
