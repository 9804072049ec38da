"""The what-if and correlate HTML pages (issue 7): rendered from real results, checked as files and in
headless Chromium (tests/e2e/browser.py; the browser tests fail, never skip, without Chromium).

Expected counts come from the results, computed here without the renderers: one bar pair per
fusion group (per rule, capped at `top`) and per op whose latency changed; one scatter point per
correlated row with a projected and a measured time above zero.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphperf.cli import main
from graphperf.correlate import correlate_onnx, profile_onnx
from graphperf.passes.whatif import whatif
from graphperf.pipeline import ModelRequest, load_graph
from graphperf.report.html_correlate import render_correlate_html
from graphperf.report.html_whatif import render_whatif_html
from graphperf.report.units import seconds
from graphperf.target import load_target

from .test_html import browser  # noqa: F401  (the module's headless Chromium; fails, never skips, without it)

SVG_NS = "http://www.w3.org/2000/svg"
TOP = 8
SWEEP = ("hbm_gbps", [1000.0, 2000.0, 3000.0, 4000.0])


# -- fixtures -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _decode():
    return load_graph(ModelRequest("llama3-8b", config="tiny", phase="decode"))


@functools.lru_cache(maxsize=None)
def fused_result():
    """Elementwise fusion + fp8 weights + a faster HBM + an HBM sweep on a tiny Llama decode step."""
    graph, info = _decode()
    return whatif(graph, load_target("h100"), info, fuse=["elementwise"], precision={"weights": "float8_e4m3fn"},
                  sets={"hbm_gbps": "4000"}, sweep_spec=SWEEP)


@functools.lru_cache(maxsize=None)
def precision_result():
    """No fusion: the page shows per-op bars only."""
    graph, info = _decode()
    return whatif(graph, load_target("h100"), info, precision={"weights": "float8_e4m3fn"})


def fuse_groups(result) -> dict[str, int]:
    return {r["rule"]: len(r["groups"]) for r in result.rewrites if r["rewrite"] == "fuse" and r["groups"]}


def changed_ops(result) -> int:
    """Ops whose summed latency differs between the two reports by more than float noise (1e-9 of the larger
    side; an op on one side only counts)."""
    b = {g["name"]: g["latency_s"] for g in result.before.by_op}
    a = {g["name"]: g["latency_s"] for g in result.after.by_op}
    return sum(1 for op in set(a) | set(b)
               if abs(a.get(op, 0.0) - b.get(op, 0.0)) > 1e-9 * max(a.get(op, 0.0), b.get(op, 0.0)))


def expected_pairs(result, top: int) -> str:
    return ",".join(str(min(top, n)) for n in [*fuse_groups(result).values(), changed_ops(result)])


def _mlp_onnx(path):
    """Two linear layers with ReLU and a softmax head: MatMul+Add pairs that onnxruntime fuses."""
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["y1"], name="mm1"),
             helper.make_node("Add", ["y1", "b1"], ["z1"], name="add1"),
             helper.make_node("Relu", ["z1"], ["h1"], name="relu1"),
             helper.make_node("MatMul", ["h1", "w2"], ["y2"], name="mm2"),
             helper.make_node("Add", ["y2", "b2"], ["z2"], name="add2"),
             helper.make_node("Relu", ["z2"], ["h2"], name="relu2"),
             helper.make_node("MatMul", ["h2", "w3"], ["y3"], name="mm3"),
             helper.make_node("Softmax", ["y3"], ["o"], name="softmax", axis=-1)]
    graph = helper.make_graph(nodes, "mlp", [vi("x", TensorProto.FLOAT, ["batch", 128])],
                              [vi("o", TensorProto.FLOAT, ["batch", 32])],
                              [init("w1", 128, 256), init("b1", 256), init("w2", 256, 128), init("b2", 128),
                               init("w3", 128, 32)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """(model, profile, profile with a ghost event that matches no node), measured once."""
    d = tmp_path_factory.mktemp("pages")
    model = _mlp_onnx(d / "mlp.onnx")
    prof = profile_onnx(model, str(d / "mlp.profile.json"), dims={"batch": 64}, runs=3, warmup=1)
    events = json.load(open(prof))
    run = [e for e in events if e.get("name") == "model_run"][-1]
    events.append({"cat": "Node", "pid": 1, "tid": 1, "ph": "X", "name": "ghost<&>_kernel_time", "ts": run["ts"] + 1,
                   "dur": 77, "args": {"op_name": "Mystery", "provider": "CPUExecutionProvider"}})
    ghost = d / "ghost.json"
    ghost.write_text(json.dumps(events))
    return model, prof, str(ghost)


@pytest.fixture(scope="module")
def correlation(profiled):
    model, _, ghost = profiled
    return correlate_onnx(model, ghost, load_target("host"), dims={"batch": 64})


def plotted(c) -> int:
    return sum(1 for r in c.rows if r.projected_s is not None and r.projected_s > 0 and r.measured_s > 0)


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) <= {SVG_NS}, "a URL other than the SVG namespace"
    for fetch in ("src=", "<link", "@import", "url(", "<iframe", "<img"):
        assert fetch not in page, f"{fetch} would load something at view time"
    assert page.count("<script>") == 1  # the page's own, inline


def _attrs(dom: str) -> dict[str, str]:
    return dict(re.findall(r'(data-gp-[a-z-]+)="([^"]*)"', re.search(r"<html[^>]*>", dom).group(0)))


# -- what-if page (no browser) ----------------------------------------------------------------------


def test_whatif_page_is_self_contained_deterministic_and_complete():
    result = fused_result()
    page = render_whatif_html(result, top=TOP)
    assert page == render_whatif_html(fused_result(), top=TOP)
    assert_self_contained(page)
    for anchor in ("totals", "rewrites", "groups", "ops", "flags", "refused", "sweep", "model", "conventions"):
        assert f'<section id="{anchor}">' in page
    assert page.count('<g class="pair">') == sum(int(n) for n in expected_pairs(result, TOP).split(",")) > 0
    assert f'data-expected-pairs="{min(TOP, fuse_groups(result)["elementwise"])}"' in page
    # totals before and after, the rewrites in order, every refusal with its reason, every sweep value
    assert seconds(result.before.totals["latency_s"]) in page and seconds(result.after.totals["latency_s"]) in page
    assert "weights -&gt; float8_e4m3fn" in page and "hbm_gbps=4000" in page
    refused = page[page.index('<section id="refused">'):page.index('<section id="sweep">')]
    assert refused.count("</tr>") == len(result.refused) + len({(r["rule"], r["kind"]) for r in result.refused}) + 2
    for r in result.refused:
        assert r["reason"].replace("'", "&#x27;") in refused
    sweep = page[page.index('<section id="sweep">'):page.index('<section id="model">')]
    assert sweep.count('<circle class="mark') == 3 * len(SWEEP[1])  # latency, compute and memory per value
    for row in result.sweep["rows"]:
        assert f'data-v="{row["value"]:g}"' in sweep and seconds(row["latency_s"]) in sweep


def test_group_bars_are_the_members_before_and_the_fused_node_after():
    result = fused_result()
    before = {r.name: r.latency_s for r in result.before.nodes}
    after = {r.name: r.latency_s for r in result.after.nodes}
    page = render_whatif_html(result, top=10 ** 6)
    groups = result.rewrites[1]["groups"]
    assert groups, "the tiny Llama decode step has elementwise chains to fuse"
    for g in groups:
        b = sum(before[m] for m in g["members"])
        a = after[g["node"]]
        assert a < b  # one launch instead of several: fusion saves time here
        assert f"before {seconds(b)} (sum of the members), after {seconds(a)}" in page


def test_whatif_without_fusion_shows_per_op_bars_and_no_group_section():
    result = precision_result()
    page = render_whatif_html(result, top=TOP)
    assert '<section id="groups">' not in page
    assert page.count('<g class="pair">') == min(TOP, changed_ops(result)) > 0
    assert "no fusion was asked (--fuse)" in page and '<section id="sweep">' not in page


def test_rules_are_read_generically_and_unknown_stays_unknown():
    """A later rule (here a made-up `epilogue`) that fuses an earlier group, and refusals with extra or
    missing keys, render without error; a group with no node in the after report shows "unknown"."""
    result = fused_result()
    first = result.rewrites[1]["groups"][0]
    mm = next(r for r in result.before.nodes if r.op == "matmul")
    epilogue = {"rewrite": "fuse", "rule": "epilogue", "groups_formed": 1, "nodes_fused": 2,
                "groups": [{"node": "fused_epi<x>", "members": [first["node"], mm.name], "member_ops": ["fused", "matmul"],
                            "inputs": [], "outputs": []}]}
    refused = [{"rule": "norm", "kind": "not_a_norm", "reason": "no <reduce> before the scale", "pattern": "rms"},
               {"kind": "shape"}]
    after = copy.copy(result.after)  # as the epilogue rule would leave it: the first group is inside fused_epi<x>
    after.nodes = [r for r in result.after.nodes if r.name != first["node"]]
    odd = dataclasses.replace(result, after=after, rewrites=[*result.rewrites, epilogue],
                              refused=[*result.refused, *refused])
    page = render_whatif_html(odd, top=TOP)
    assert "Rule epilogue: 1 group</h3>" in page and "fused_epi&lt;x&gt;" in page
    assert "fused again by rule epilogue into fused_epi&lt;x&gt;" in page
    # before: the earlier group's members plus the matmul; after: no such node in the after report
    assert "fused_epi<x>" not in {r.name for r in result.after.nodes}
    b = sum(r.latency_s for r in result.before.nodes if r.name in first["members"]) + mm.latency_s
    assert f"before {seconds(b)} (sum of the members), after ?" in page and "after unknown" in page
    assert "no &lt;reduce&gt; before the scale" in page and "pattern=rms" in page and "not_a_norm" in page
    n = fuse_groups(result)["elementwise"]
    assert page.count('<g class="pair">') == min(TOP, n) + 1 + min(TOP, changed_ops(result))


# -- correlate page (no browser) --------------------------------------------------------------------


def test_correlate_page_is_self_contained_with_one_point_per_row(correlation):
    c = correlation
    page = render_correlate_html(c)
    assert page == render_correlate_html(c)
    assert_self_contained(page)
    n = plotted(c)
    assert n == len(c.rows) >= 4 and page.count('<circle class="pt ') == n
    assert f'data-expected-points="{n}"' in page and f"{n} of {len(c.rows)} matched rows are plotted" in page
    assert 'class="diag"' in page and 'class="band"' in page  # y = x and the 2x band
    s = c.stats
    for key in ("median_ape", "p90_ape", "within_2x", "time_weighted_error"):
        assert f"{s[key]:.1%}" in page, key
    assert f"{s['whole_model_error']:+.1%}" in page
    # the ghost event is listed with its time, escaped; it is in no row
    unmatched = page[page.index('<section id="unmatched">'):page.index('<section id="profile">')]
    assert "ghost&lt;&amp;&gt;" in unmatched and "Mystery" in unmatched and seconds(77e-6) in unmatched
    # every row's tooltip names node, op, projected, measured, error and bound
    for r in c.rows:
        err = (r.projected_s - r.measured_s) / r.measured_s
        assert (f"op {r.op}, {r.bound}-bound\nprojected {seconds(r.projected_s)}, measured {seconds(r.measured_s)}\n"
                f"error {err:+.1%}") in page


# -- CLI ----------------------------------------------------------------------------------------------


def test_cli_whatif_and_correlate_write_html(profiled, tmp_path, capsys):
    model, prof, _ = profiled
    out = tmp_path / "whatif.html"
    assert main(["whatif", "llama3-8b", "--config", "tiny", "--phase", "decode", "--fuse", "elementwise",
                 "--sweep", "hbm_gbps=1000:3000:1000", "--format", "html", "-o", str(out)]) == 0
    text = out.read_text()
    assert_self_contained(text)
    assert '<section id="groups">' in text and '<section id="sweep">' in text
    out = tmp_path / "correlate.html"
    assert main(["correlate", model, "--profile", prof, "--target", "host", "--dim", "batch=64", "--format", "html",
                 "-o", str(out)]) == 0
    assert_self_contained(out.read_text())
    capsys.readouterr()  # without -o the page goes to stdout, as `analyze --format html` does
    assert main(["correlate", model, "--profile", prof, "--target", "host", "--dim", "batch=64", "--format", "html"]) == 0
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("argv, words", [
    (["correlate", "MODEL", "--target", "host", "--format", "html"], "--profile"),
    (["correlate", "MODEL", "--profile", "PROFILE", "--format", "html"], "--target"),
    (["correlate", "gpt2", "--profile", "PROFILE", "--target", "host", "--format", "html"], ".onnx"),
    (["correlate", "MODEL", "--profile", "PROFILE", "--target", "host", "--format", "htm"], "htm"),
    (["whatif", "llama3-8b", "--config", "tiny", "--format", "html", "--sweep", "bogus=1:2:1"], "bogus"),
    (["whatif", "llama3-8b", "--config", "tiny", "--format", "html", "--fuse", "everything"], "--fuse"),
])
def test_cli_bad_input_is_one_line_exit_2(profiled, tmp_path, capsys, argv, words):
    model, prof, _ = profiled
    out = tmp_path / "never.html"
    argv = [{"MODEL": model, "PROFILE": prof}.get(a, a) for a in argv] + ["-o", str(out)]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], (argv, err)
    assert not out.exists()


# -- in the browser -----------------------------------------------------------------------------------


REFUSED_BY_REASON = """(() => {
  const table = document.querySelectorAll('#refused table')[1];
  const th = [...table.tHead.rows[0].cells].find(c => c.textContent.trim() === 'reason');
  th.click();
  return [...table.tBodies[0].rows].map(r => r.cells[th.cellIndex].textContent.trim().toLowerCase());
})()"""


def test_whatif_page_in_headless_chromium(browser, tmp_path):
    result = fused_result()
    path = tmp_path / "whatif.html"
    path.write_text(render_whatif_html(result, top=TOP), encoding="utf-8")
    page = browser.open(path, script=REFUSED_BY_REASON)
    assert page.problems == []
    attrs = _attrs(page.dom)
    assert attrs.get("data-gp-status") == "ok" and "data-gp-errors" not in attrs, attrs
    assert attrs["data-gp-pairs"] == expected_pairs(result, TOP) and "," in attrs["data-gp-pairs"]
    assert page.result == sorted(page.result, reverse=True) and len(page.result) == len(result.refused)
    nojs = browser.open(path, javascript=False)
    assert nojs.problems == [] and "data-gp-status" not in _attrs(nojs.dom)
    dom = nojs.dom
    assert dom.count('<g class="pair">') == sum(int(n) for n in expected_pairs(result, TOP).split(","))
    assert seconds(result.before.totals["latency_s"]) in dom and seconds(result.after.totals["latency_s"]) in dom
    refused = dom[dom.index('<section id="refused">'):dom.index('<section id="sweep">')]
    assert refused.count("<tr>") >= len(result.refused) + 2  # heads + every refusal
    sweep = dom[dom.index('<section id="sweep">'):dom.index('<section id="model">')]
    assert sweep.count("<tr>") == 1 + len(SWEEP[1])


def test_correlate_page_in_headless_chromium(browser, correlation, tmp_path):
    c = correlation
    path = tmp_path / "correlate.html"
    path.write_text(render_correlate_html(c), encoding="utf-8")
    page = browser.open(path)
    assert page.problems == []
    attrs = _attrs(page.dom)
    assert attrs.get("data-gp-status") == "ok" and attrs["data-gp-points"] == str(plotted(c))
    nojs = browser.open(path, javascript=False)
    assert nojs.problems == [] and "data-gp-status" not in _attrs(nojs.dom)
    dom = nojs.dom
    assert len(re.findall(r'<circle class="pt ', dom)) == plotted(c)
    assert "median |error|" in dom and f"{c.stats['median_ape']:.1%}" in dom
    outliers = dom[dom.index('<section id="outliers">'):dom.index('<section id="rows">')]
    assert outliers.count("<tr>") == 1 + min(20, len(c.rows))
    assert "ghost&lt;&amp;&gt;" in dom and "Mystery" in dom


def test_rows_a_log_axis_cannot_place_are_named_not_drawn(correlation):
    from graphperf.correlate import Row

    free = Row("view<1>", "view", "free", ["view<1>"], ["view<1>"], 0.0, 3e-6)
    uncounted = Row("mystery", "custom", "unknown", ["mystery"], ["mystery"], None, 4e-6)
    c = dataclasses.replace(correlation, rows=[*correlation.rows, free, uncounted])
    page = render_correlate_html(c)
    assert page.count('<circle class="pt ') == plotted(c) == len(c.rows) - 2
    assert f"{plotted(c)} of {len(c.rows)} matched rows are plotted" in page
    assert "1 are projected 0 (free views" in page and "view&lt;1&gt;" in page
    assert "1 have no projection" in page and "mystery</span> (custom)" in page


def test_tiling_rewrite_is_summarised_with_its_tile_counts():
    from graphperf.passes.tiling import parse_tile

    graph, info = load_graph(ModelRequest("llama3-8b", config="tiny", phase="decode"))
    result = whatif(graph, load_target("h100"), info, tile=parse_tile("auto"))
    nodes = result.rewrites[-1]["nodes"]
    page = render_whatif_html(result)
    assert f"tiling (auto): {len(nodes)} matmul/conv/attention nodes tiled" in page
