"""ONNX coverage, enumerated from the op sets' own metadata at test time: every default-domain op up to opset 23
(onnx.defs, and the ones onnxruntime adds) and every com.microsoft contrib op onnxruntime registers is mapped onto
canonical ops with cost rules, handled by the capture, or excluded with a one-line reason."""

from __future__ import annotations

import onnx
import pytest

from graphperf.capture import onnx_coverage, onnx_ops
from graphperf.capture.onnx_coverage import CONTRIB, EXCLUDED, HANDLED, MAX_OPSET, status
from graphperf.ops import CANONICAL, canonical
from graphperf.rules import is_free, rule_for


def _default_ops():
    return sorted({s.name for s in onnx.defs.get_all_schemas_with_history()
                   if s.domain in ("", "ai.onnx") and s.since_version <= MAX_OPSET})


def _contrib_ops():
    ort_state = pytest.importorskip("onnxruntime.capi.onnxruntime_pybind11_state")
    return sorted({s.name for s in ort_state.get_all_operator_schema() if s.domain == CONTRIB})


def test_every_default_domain_op_up_to_opset_23_is_covered():
    missing = [op for op in _default_ops() if status("", op).kind == "missing"]
    assert missing == [], f"ONNX ops with no mapping, handling or reasoned exclusion: {missing}"


def test_every_onnxruntime_contrib_op_is_covered():
    missing = [op for op in _contrib_ops() if status(CONTRIB, op).kind == "missing"]
    assert missing == [], f"com.microsoft ops with no mapping, handling or reasoned exclusion: {missing}"


def test_the_transformer_optimizer_ops_are_mapped_not_excluded():
    emitted = ("Attention", "MultiHeadAttention", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
               "SimplifiedLayerNormalization", "FastGelu", "BiasGelu", "Gelu", "QuickGelu", "GroupQueryAttention",
               "RotaryEmbedding", "MatMulNBits", "EmbedLayerNormalization", "BiasAdd", "BiasSoftmax", "BiasSplitGelu",
               "GemmFastGelu", "FusedMatMul", "FusedConv", "NhwcConv", "GroupNorm", "SkipGroupNorm", "QAttention",
               "QEmbedLayerNormalization", "DecoderMaskedMultiHeadAttention", "DecoderMaskedSelfAttention")
    assert {op: status(CONTRIB, op).kind for op in emitted} == {op: "mapped" for op in emitted}


def test_uncovered_enumerates_both_sets():
    assert onnx_coverage.uncovered() == []
    assert set(_default_ops()) <= onnx_coverage.default_domain_ops()
    assert set(_contrib_ops()) == onnx_coverage.contrib_ops()


def test_every_mapping_produces_canonical_ops_with_a_cost_rule_or_free():
    for (domain, op_type), targets in onnx_ops.TARGETS.items():
        for target in targets:
            assert target in CANONICAL, (domain, op_type, target)
            op = canonical(target)
            assert rule_for(op) is not None or is_free(op), (domain, op_type, target)
        assert status(domain, op_type).kind == "mapped"


def test_exclusions_have_one_line_reasons_and_are_not_stale():
    ort_default = set()
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        ort_default = {s.name for s in ort_state.get_all_operator_schema() if s.domain == ""}
    except ImportError:
        pass
    known = {("", op) for op in _default_ops()} | {("", op) for op in ort_default} | \
        {(CONTRIB, op) for op in _contrib_ops()}
    for key, reason in {**EXCLUDED, **HANDLED}.items():
        assert reason.strip() and "\n" not in reason and len(reason) < 160, key
        assert onnx_ops.mapper(*key) is None, f"{key} is both mapped and excluded"
        assert key in known, f"{key} is excluded but no op set has it"


def test_status_names_the_reason():
    assert status("ai.onnx", "Loop").kind == "excluded" and "not unrolled" in status("", "Loop").reason
    assert status("", "Constant").kind == "handled"
    assert status("", "MatMul") == onnx_coverage.Status("", "MatMul", "mapped", ("matmul",))
    assert status("com.example", "Frobnicate").kind == "missing"
