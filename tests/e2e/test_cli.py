"""The CLI end to end: reports in every format, and one clear line + exit code for each bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from graphperf.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _mlp_onnx(path, batch="batch", custom=False):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 32])
    w = helper.make_tensor("w", TensorProto.FLOAT, [64, 32], [0.0] * (64 * 32))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y" if not custom else "r"], name="relu")]
    outputs = [y]
    if custom:
        nodes.append(helper.make_node("Frobnicate", ["r"], ["y"], name="frob", domain="acme"))
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 32])]
    graph = helper.make_graph(nodes, "mlp", [x], outputs, [w])
    opsets = [helper.make_opsetid("", 21)] + ([helper.make_opsetid("acme", 1)] if custom else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return str(path)


def test_json_report_has_the_contract_fields_and_is_deterministic(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    code, first, err = run(capsys, "analyze", path, "--dim", "batch=8", "--target", "h100", "--format", "json")
    assert code == 0, err
    code, second, _ = run(capsys, "analyze", path, "--dim", "batch=8", "--target", "h100", "--format", "json")
    assert first == second
    doc = json.loads(first)
    assert doc["schema"] == "graphperf.report/1"
    assert doc["target"]["name"] == "h100"
    for key in ("flops", "matrix_flops", "transcendentals", "bytes", "weight_bytes", "latency_s", "coverage",
                "unknown_ops"):
        assert key in doc["totals"]
    mm = next(n for n in doc["nodes"] if n["name"] == "mm")
    assert mm["matrix_flops"] == 2 * 8 * 64 * 32
    assert mm["bytes_read"] == (8 * 64 + 64 * 32) * 4 and mm["bytes_written"] == 8 * 32 * 4
    assert doc["totals"]["weight_bytes"] == 64 * 32 * 4
    for field in ("name", "op", "source_op", "module", "flops", "matrix_flops", "transcendentals", "bytes_read",
                  "bytes_written", "intensity", "latency_s", "bound"):
        assert field in mm


def test_csv_and_table_formats(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    code, out, _ = run(capsys, "analyze", path, "--dim", "batch=4", "--format", "csv")
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split(",")[:3] == ["name", "op", "source_op"] and len(rows) == 2
    out_file = tmp_path / "report.txt"
    code, _, _ = run(capsys, "analyze", path, "--dim", "batch=4", "-o", str(out_file))
    assert code == 0 and "projected latency" in out_file.read_text()


def test_set_overrides_a_target_field(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "mlp.onnx")
    base = json.loads(run(capsys, "analyze", path, "--dim", "batch=4", "--format", "json")[1])
    fast = json.loads(run(capsys, "analyze", path, "--dim", "batch=4", "--format", "json",
                          "--set", "hbm_gbps=99999")[1])
    assert fast["target"]["hbm_gbps"] == 99999
    assert fast["totals"]["memory_s"] < base["totals"]["memory_s"]


def _bad(capsys, code_expected, *argv, contains=""):
    code, out, err = run(capsys, *argv)
    lines = [l for l in err.strip().splitlines() if l]
    assert code == code_expected, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert contains.lower() in lines[0].lower()
    return lines[0]


def test_bad_inputs_give_one_line_and_exit_code(capsys, tmp_path):
    good = _mlp_onnx(tmp_path / "mlp.onnx")
    _bad(capsys, 2, "analyze", good, "--dim", "batch=4", "--target", "h1000", contains="h1000")
    _bad(capsys, 2, "analyze", str(tmp_path / "missing.onnx"), contains="missing.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model")
    _bad(capsys, 2, "analyze", str(text), contains="notes.onnx")
    truncated = tmp_path / "trunc.onnx"
    truncated.write_bytes(open(good, "rb").read()[:40])
    _bad(capsys, 2, "analyze", str(truncated), contains="trunc.onnx")
    _bad(capsys, 2, "analyze", good, contains="batch")  # unbound dynamic dimension
    _bad(capsys, 2, "analyze", good, "--dim", "batch=0", contains="batch")
    _bad(capsys, 2, "analyze", good, "--dim", "batch=99999999999999", contains="batch")
    _bad(capsys, 2, "analyze", good, "--dim", "batch=4", "--set", "hbm_gbs=1", contains="hbm_gbs")
    _bad(capsys, 2, "analyze", good, "--dim", "batch=4", "--set", "hbm_gbps=fast", contains="hbm_gbps")
    _bad(capsys, 2, "analyze", good, "--dim", "batch", contains="--dim")
    _bad(capsys, 2, "analyze", "no-such-model", contains="no-such-model")
    _bad(capsys, 2, "analyze", good, "--frobnicate")
    _bad(capsys, 2, "analyze", "gpt2", "--batch", "0")
    bad_target = tmp_path / "chip.toml"
    bad_target.write_text("name = 'chip'\nhbm_gbps = [\n")
    _bad(capsys, 2, "analyze", good, "--dim", "batch=4", "--target", str(bad_target), contains="chip.toml")


def test_unknown_op_is_reported_not_zeroed(capsys, tmp_path):
    path = _mlp_onnx(tmp_path / "custom.onnx", batch=4, custom=True)
    code, out, err = run(capsys, "analyze", path, "--format", "json")
    assert code == 1 and "acme" in err and "--allow-unknown" in err
    doc = json.loads(out)
    assert doc["totals"]["coverage"] == pytest.approx(2 / 3)
    assert list(doc["totals"]["unknown_ops"].values()) == [1]
    frob = next(n for n in doc["nodes"] if n["name"] == "frob")
    assert frob["flops"] is None and frob["latency_s"] is None and frob["bound"] == "unknown"
    assert doc["totals"]["latency_is_lower_bound"] is True
    code, _, _ = run(capsys, "analyze", path, "--format", "json", "--allow-unknown")
    assert code == 0


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x):
        return torch.relu(self.fc(x))


def test_pt2_files_analyse_and_bad_ones_fail_cleanly(capsys, tmp_path):
    ep = torch.export.export(_Tiny(), (torch.randn(4, 16),))
    path = tmp_path / "tiny.pt2"
    torch.export.save(ep, str(path))
    code, out, err = run(capsys, "analyze", str(path), "--format", "json", "--target", "a100")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["totals"]["matrix_flops"] == 2 * 4 * 16 * 8
    assert doc["totals"]["parameters"] == 16 * 8 + 8
    trunc = tmp_path / "trunc.pt2"
    trunc.write_bytes(path.read_bytes()[:100])
    _bad(capsys, 2, "analyze", str(trunc), contains="trunc.pt2")
    _bad(capsys, 2, "analyze", str(path), "--batch", "2", contains="--batch")


def test_console_script_exit_codes():
    ok = subprocess.run([sys.executable, "-m", "graphperf", "targets"], capture_output=True, text=True)
    assert ok.returncode == 0 and "h100" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "graphperf", "analyze", "--target", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr


def test_pt2_with_pickled_objects_is_refused_without_unpickling(capsys, tmp_path):
    import zipfile

    path = tmp_path / "evil.pt2"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/models/model.json", "{}")
        zf.writestr("evil/data/constants/opaque_obj_0", b"cos\nsystem\n(S'echo owned'\ntR.")
    _bad(capsys, 2, "analyze", str(path), contains="pickled")
