"""graphperf validate: hardware mapping, workloads rebuilt from records, error statistics, CLI."""

from __future__ import annotations

import json

import pytest

from graphperf.count import count
from graphperf.validate import Case, Skip, build_case, default_reference, load_records, map_hardware, validate_records
from graphperf.validate.run import MODELS


@pytest.fixture(scope="module")
def records():
    return load_records(default_reference())


def _rec(records, rid):
    return next(r for r in records if r["id"] == rid)


@pytest.mark.parametrize("hardware, target", [
    ("NVIDIA sm_90 (Hopper; SKU not stated for this table, likely H100 80GB HBM3 SXM)", "h100"),
    ("NVIDIA H100 80GB HBM3 SXM (Azure ND H100 v5)", "h100"),
    ("NVIDIA H100 PCIe (80GB)", "h100-pcie"),
    ("NVIDIA H100 (single GPU; variant not stated)", None),
    ("4x NVIDIA A100 80GB (TP4)", None),
    ("Host CPUs of a Voltage Park 8x H100 SXM5 node (CPU model not stated)", None),
    ("NVIDIA A100 40GB (form factor not stated)", None),
    ("NVIDIA A100-SXM4-80GB (Azure ND A100 v4)", "a100"),
    ("AMD Instinct MI300X (Azure ND MI300X v5)", "mi300x"),
    ("AMD MI250X (one GCD)", None),
    ("Some Future Chip", None),
])
def test_map_hardware(hardware, target):
    name, why = map_hardware(hardware)
    assert name == target
    if target is None:
        assert why  # an unmapped record always says why


def test_gemm_record_rebuilds_the_shape_and_the_measured_time(records):
    rec = next(r for r in records if r["category"] == "gemm" and r["params"].get("B") == 4)
    case = build_case(rec)
    p = rec["params"]
    flops = 2 * p["B"] * p["M"] * p["N"] * p["K"]
    assert isinstance(case, Case)
    assert count(case.graph)[0].cost.matrix_flops == flops
    assert case.measured_s == pytest.approx(flops / (rec["value"] * 1e12))
    f32 = next(r for r in records if r["category"] == "gemm" and r["params"].get("dtype") == "f32xf32->f32")
    assert build_case(f32).sets == {"allow_tf32": "true"}  # the record's notes: TF32 tensor cores ran


def test_attention_record_counts_the_benchmarks_forward_flops(records):
    for causal in (False, True):
        rec = next(r for r in records if r["category"] == "attention" and r["params"].get("pass") == "fwd+bwd"
                   and r["params"]["causal"] is causal)
        p = rec["params"]
        case = build_case(rec)
        fwd = 4 * p["batch"] * p["seqlen"] ** 2 * p["n_heads"] * p["head_dim"] // (2 if causal else 1)
        assert count(case.graph)[0].cost.matrix_flops == fwd
        assert case.measured_s == pytest.approx(3.5 * fwd / (rec["value"] * 1e12))


def test_stream_records_move_the_bytes_stream_counts(records):
    expected = {"copy": 2, "mul": 2, "scale": 2, "add": 3, "triad": 3, "dot": 2, "init": 1, "read": 1}
    seen = set()
    for rec in records:
        kernel = str(rec["params"].get("kernel", "")).lower()
        if rec["category"] != "memory_bandwidth" or kernel not in expected:
            continue
        case = build_case(rec)
        cost = count(case.graph)[0].cost
        elems = case.graph.values["in0" if "in0" in case.graph.values else "out0"].type.numel
        assert cost.bytes_read + cost.bytes_written == pytest.approx(expected[kernel] * elems * 8, abs=8)
        seen.add(kernel)
    assert seen == set(expected)


def test_elementwise_norm_time_is_elements_over_rate(records):
    rec = next(r for r in records if r["category"] == "elementwise_norm" and "M" in r["params"])
    case = build_case(rec)
    assert case.measured_s == pytest.approx(rec["params"]["M"] * rec["params"]["N"] / (rec["value"] * 1e9))


@pytest.mark.parametrize("rid, words", [("llm_inference-0009", "tensor parallel"),
                                        ("llm_inference-0002", "only bf16"),
                                        ("llm_inference-0112", "serving benchmark")])
def test_llm_records_that_are_not_one_step_are_skipped_with_the_reason(records, rid, words):
    case = build_case(_rec(records, rid))
    assert isinstance(case, Skip) and words in case.reason


def test_validate_accounts_for_every_record_and_orders_the_models(records):
    wanted = [r for r in records if r["category"] in ("gemm", "memory_bandwidth", "elementwise_norm", "attention")]
    result = validate_records(wanted)
    assert len(result.rows) + len(result.skipped) == len(wanted)
    assert all(s["reason"] for s in result.skipped)
    assert set(result.stats) == {"all", "gemm", "memory_bandwidth", "elementwise_norm", "attention"}
    for row in result.rows:  # efficiencies <= 1 and a launch overhead >= 0 only add time
        assert row["projected_s"]["roofline"] <= row["projected_s"]["efficiency"] * (1 + 1e-9)
    gemm = result.stats["gemm"]
    assert set(gemm) == set(MODELS) and gemm["tiled"]["rows"] == gemm["roofline"]["rows"] > 300
    # the default projection (size-aware kernel model on h100/h200) and the tile model both beat the bare roofline
    assert max(gemm["tiled"]["mdape"], gemm["efficiency"]["mdape"]) < gemm["roofline"]["mdape"]


@pytest.mark.slow
def test_one_llm_decode_step_is_at_least_its_weight_bytes_over_bandwidth(records):
    from graphperf.target import load_target

    rec = _rec(records, "llm_inference-0023")  # Llama-2-7B bf16 decode, batch 1, one A100 80GB
    result = validate_records([rec])
    assert len(result.rows) == 1, result.skipped
    row = result.rows[0]
    a100 = load_target("a100")
    weights = 6.7e9 * 2  # Llama 2 7B: ~6.7e9 parameters in bf16
    assert row["projected_s"]["roofline"] >= 0.95 * weights / (a100.hbm_gbps * 1e9)
    assert row["measured_s"] == pytest.approx(1 / rec["value"])
    # fusion only removes launches and intermediate traffic: between the roofline and the unfused model
    assert row["projected_s"]["roofline"] < row["projected_s"]["fused"] < row["projected_s"]["efficiency"]


def test_cli_validate_json_and_usage_errors(tmp_path, capsys):
    from graphperf.cli import main

    out = tmp_path / "v.json"
    assert main(["validate", "--category", "memory_bandwidth", "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["schema"] == "graphperf.validate/1" and data["stats"]["memory_bandwidth"]["tiled"]["rows"] > 0
    assert main(["validate", "--category", "nope"]) == 2
    assert main(["validate", "--reference", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "--category 'nope'" in err and "cannot read measurements" in err


@pytest.mark.parametrize("change,reason", [
    ({"params": None}, "params missing"), ({"id": None}, "id missing"), ({"value": 0}, "value 0 is not positive"),
    ({"value": -5}, "value -5 is not positive"), ({"params": {"M": "x"}}, "no integer M, N, K"),
])
def test_malformed_records_are_skipped_with_the_reason(records, change, reason):
    rec = {**_rec(records, "gemm-0001"), **change}
    rec = {k: v for k, v in rec.items() if v is not None}
    result = validate_records([rec])
    assert result.rows == [] and len(result.skipped) == 1 and reason in result.skipped[0]["reason"]


def test_progress_is_reported_for_every_record_in_order():
    from graphperf.validate.run import default_reference, load_records, validate_records

    records = [r for r in load_records(default_reference()) if r["category"] == "memory_bandwidth"]
    seen = []
    validate_records(records, ("memory_bandwidth",), lambda done, total, rid: seen.append((done, total, rid)))
    assert [s[0] for s in seen] == list(range(len(records))) and {s[1] for s in seen} == {len(records)}
    assert [s[2] for s in seen] == [str(r.get("id", "?")) for r in records]
