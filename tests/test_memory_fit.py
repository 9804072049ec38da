"""Memory capacity (graphperf/report/memory_fit.py): `fits` and the shortfall in the JSON totals, the
terminal table and the HTML page; a model that does not fit never shows a bare projected latency."""

from __future__ import annotations

import json

from graphperf.cli import main
from graphperf.report.memory_fit import memory_fit
from tests.e2e.test_cli import _mlp_onnx

WEIGHT_BYTES = 64 * 32 * 4  # the MLP's one fp32 weight (tests/e2e/test_cli.py)


def _analyze(capsys, path, *extra):
    code = main(["analyze", path, "--dim", "batch=4", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_memory_fit_definition():
    assert memory_fit(100, 20, 1e-6) == {"memory_needed_bytes": 120, "memory_capacity_bytes": 1000, "fits": True,
                                         "memory_shortfall_bytes": 0}
    assert memory_fit(3000, 500, 1e-6)["memory_shortfall_bytes"] == 3000 + 500 - 1000
    assert memory_fit(3000, 500, None) == {"memory_needed_bytes": 3500, "memory_capacity_bytes": None, "fits": None,
                                           "memory_shortfall_bytes": None}


def test_a_model_that_does_not_fit(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    t = json.loads(_analyze(capsys, path, "--set", "memory_gb=0.000001", "--format", "json"))["totals"]
    assert t["memory_needed_bytes"] == t["weight_bytes"] + t["peak_activation_bytes"] and t["weight_bytes"] == WEIGHT_BYTES
    assert t["fits"] is False and t["memory_capacity_bytes"] == 1000
    assert t["memory_shortfall_bytes"] == t["memory_needed_bytes"] - 1000
    table = _analyze(capsys, path, "--set", "memory_gb=0.000001")
    latency_line = next(line for line in table.splitlines() if "projected latency" in line)
    assert "does not fit" in latency_line
    assert "DOES NOT FIT" in table and "short by" in table
    html = _analyze(capsys, path, "--set", "memory_gb=0.000001", "--format", "html")
    assert "does not fit: needs" in html and "DOES NOT FIT" in html


def test_a_model_that_fits(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    t = json.loads(_analyze(capsys, path, "--target", "h100", "--format", "json"))["totals"]
    assert t["fits"] is True and t["memory_shortfall_bytes"] == 0
    table = _analyze(capsys, path, "--target", "h100")
    assert "fits in 80 GB" in table and "does not fit" not in table.lower()


def test_a_target_without_memory_gb(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    t = json.loads(_analyze(capsys, path, "--target", "xeon-8480", "--format", "json"))["totals"]
    assert t["fits"] is None and t["memory_shortfall_bytes"] is None and t["memory_capacity_bytes"] is None
    assert t["memory_needed_bytes"] == t["weight_bytes"] + t["peak_activation_bytes"]
    assert "whether it fits is unknown" in _analyze(capsys, path, "--target", "xeon-8480")


def test_the_multi_target_comparison_marks_a_model_that_does_not_fit(tmp_path):
    from graphperf import api
    from graphperf.report.html import comparison_section
    from graphperf.target import load_target

    path = _mlp_onnx(tmp_path / "mlp.onnx")
    fits = api.analyze(path, target="h100", batch=4)
    small = api.analyze(path, target=load_target("h100").with_overrides(memory_gb=1e-6), batch=4)
    body = comparison_section([fits, small]).body
    assert body.count("(does not fit in memory)") == 1
    from graphperf.compile_backend import combine

    assert combine([small], None)["fits"] is False and combine([fits], None)["fits"] is True
