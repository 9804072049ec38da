"""Which ONNX ops graphperf covers, derived from the op sets' own metadata.

The op sets, enumerated when asked (never a hand list):
- the default domain (ai.onnx): every op with a schema in ``onnx.defs`` since opset `MAX_OPSET` or earlier,
  plus the ops onnxruntime registers in that domain beyond them (old experimental ops, its own
  SimplifiedLayerNormalization);
- ``com.microsoft``: every contrib op onnxruntime registers (``get_all_operator_schema``), the ops its
  transformer optimizer and quantization tools emit among them; `CONTRIB_FALLBACK` when an onnxruntime build
  does not expose its schemas.

Every op of both sets has exactly one status (`status`): ``mapped`` (an `onnx_ops` mapper onto canonical ops,
each with a cost rule or registered free), ``handled`` (the capture consumes it: Constant becomes a weight
value) or ``excluded`` (a one-line reason: control flow that is not unrolled, sequence and optional types,
strings, training-only, work that follows run-time values, ...). `uncovered` lists the ops with none;
tests/test_onnx_coverage.py pins it empty, so a new op in onnx or onnxruntime fails the test until it has one.
Ops of other domains (ai.onnx.ml, ai.onnx.preview.training, onnxruntime's internal layout domains) are not
covered: they stay unknown in a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import onnx

from ..ops import CANONICAL, canonical
from . import onnx_ops

__all__ = ["MAX_OPSET", "CONTRIB", "HANDLED", "EXCLUDED", "CONTRIB_FALLBACK", "Status", "status",
           "default_domain_ops", "contrib_ops", "uncovered"]

MAX_OPSET = 23
CONTRIB = "com.microsoft"

HANDLED: dict[tuple[str, str], str] = {
    ("", "Constant"): "the capture reads its value as a weight (small values become attributes); no node",
}

_CONTROL_FLOW = "control flow with subgraphs: not unrolled (export with the loop unrolled or the branch taken)"
_SEQUENCE = "sequence type: a list of tensors has no one tensor shape"
_OPTIONAL = "optional type: whether it holds a tensor is a run-time value"
_STRINGS = "string tensors: text preprocessing, no arithmetic to count"
_GENERATION = "a generation loop around encoder/decoder subgraphs (control flow, not unrolled): analyse the step model"
_TRAINING = "training-only (onnxruntime training's dropout fusions)"
_RECURRENT_STATE = ("a chunked recurrence over a state (linear attention, state-space models): no counting "
                    "convention in graphperf yet")
_SPARSE = "the keys each query reads follow run-time block tables, selected indices or sequence lengths"
_PACKED = "padding-free (token-packed) batches: the work follows the run-time sequence lengths"
_MOE = ("mixture of experts: the expert work follows the run-time routing (graphperf counts MoE from PyTorch "
        "graphs under the capacity convention)")

EXCLUDED: dict[tuple[str, str], str] = {
    **{("", op): _CONTROL_FLOW for op in ("If", "Loop", "Scan")},
    ("", "SequenceMap"): "a subgraph run per element of a sequence: control flow, not unrolled",
    **{("", op): _SEQUENCE for op in ("ConcatFromSequence", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
                                      "SequenceErase", "SequenceInsert", "SequenceLength", "SplitToSequence")},
    **{("", op): _OPTIONAL for op in ("Optional", "OptionalGetElement", "OptionalHasElement")},
    **{("", op): _STRINGS for op in ("RegexFullMatch", "StringConcat", "StringNormalizer", "StringSplit")},
    ("", "TfIdfVectorizer"): "n-gram matching against a vocabulary: text featurization whose work follows the data",
    ("", "ImageDecoder"): "decodes JPEG/PNG bytes: preprocessing whose output shape and work follow the data",
    ("", "NonMaxSuppression"): "the boxes kept, and so the work and the output size, follow the scores at run time",
    ("", "MaxRoiPool"): "each bin's window spans its ROI's coordinates, a run-time value",
    ("", "GRUUnit"): "Caffe2's experimental GRU unit (removed from ONNX); no exporter emits it",
    **{("", op): "a TensorRT plugin placeholder: it runs only inside TensorRT"
       for op in ("DisentangledAttention_TRT", "EfficientNMS_TRT", "MultilevelCropAndResize_TRT",
                  "PyramidROIAlign_TRT")},
    **{(CONTRIB, op): _GENERATION for op in ("BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch")},
    **{(CONTRIB, op): _TRAINING for op in ("BiasDropout", "BitmaskDropout", "BitmaskBiasDropout")},
    (CONTRIB, "AttnLSTM"): "TensorFlow's LSTM with a per-step attention wrapper (legacy conversion); no exporter emits it",
    **{(CONTRIB, op): "token bookkeeping of (speculative) decoding loops: no tensor arithmetic to count"
       for op in ("BifurcationDetector", "NGramRepeatBlock", "SpeculativePrefixCommit")},
    **{(CONTRIB, op): _RECURRENT_STATE for op in ("CausalConvWithState", "VarlenCausalConvWithState", "GatedDeltaNet",
                                                   "LinearAttention", "Mamba2Verify")},
    **{(CONTRIB, op): "replays captured recurrent states for speculative decoding, as run-time metadata directs"
       for op in ("ConvStateReplay", "GatedDeltaNetStateReplay")},
    (CONTRIB, "DecoderAttention"): "legacy decoder attention whose path is chosen by run-time boolean inputs",
    **{(CONTRIB, op): _SPARSE for op in ("DynamicSparseAttention", "SparseAttention", "SparsePagedAttention",
                                         "PagedAttention")},
    **{(CONTRIB, op): "selects sparse-attention candidates with a run-time top-k and token budget"
       for op in ("SparseAttentionIndexer", "PackedSparseAttentionIndexer", "PackedSparseAttentionIndexerMerge")},
    **{(CONTRIB, op): _PACKED for op in ("PackedAttention", "PackedMultiHeadAttention", "RemovePadding",
                                         "RestorePadding")},
    **{(CONTRIB, op): "sliding-window attention whose global tokens a run-time mask chooses"
       for op in ("LongformerAttention", "QOrderedLongformerAttention")},
    (CONTRIB, "QOrderedAttention"): "deprecated int8 attention in cuBLASLt's COL32 layout; QAttention is covered",
    (CONTRIB, "DynamicTimeWarping"): "its output is the warping path, whose length is a run-time value",
    **{(CONTRIB, op): "a precompiled execution-provider blob: its work is opaque" for op in ("EPContext", "Snpe")},
    **{(CONTRIB, op): "Engram n-gram memory (hashing token ids, gating): no counting convention in graphperf yet"
       for op in ("EngramGate", "NGramHashMapping", "VarlenNGramHashMapping")},
    **{(CONTRIB, op): "hyper-connection stream mixing in attribute-chosen layouts: no counting convention in "
                      "graphperf yet"
       for op in ("HyperConnectionLowRankMix", "HyperConnectionPostMix", "HyperConnectionPreMix")},
    **{(CONTRIB, op): _MOE for op in ("MoE", "QMoE", "MoEPacked", "MoEGroupRouter")},
    (CONTRIB, "MurmurHash3"): "feature hashing of ids or strings for classical ML pipelines",
    (CONTRIB, "RMSNormRotary"): "a CUDA kernel for one checkpoint's layout (rms_norm and rotary over an "
                                "attribute-chosen strided slice)",
    (CONTRIB, "RelativePositionBias"): "T5's bucketed position bias: the query and key lengths are run-time "
                                       "scalar inputs that set the output shape",
    (CONTRIB, "GatedRelativePositionBias"): "WavLM's gated position bias fusion: no counting convention in "
                                            "graphperf yet",
    (CONTRIB, "SparseToDenseMatMul"): "A is a sparse tensor: the multiply-adds follow its run-time non-zeros",
    (CONTRIB, "Tokenizer"): _STRINGS,
    (CONTRIB, "WordConvEmbedding"): "a legacy character-CNN word embedding; no exporter emits it",
}

# The contrib ops onnxruntime's transformer optimizer and quantization tools emit: the set checked when an
# onnxruntime build does not expose its operator schemas.
CONTRIB_FALLBACK: tuple[str, ...] = (
    "Attention", "MultiHeadAttention", "GroupQueryAttention", "DecoderMaskedMultiHeadAttention",
    "DecoderMaskedSelfAttention", "PackedAttention", "PackedMultiHeadAttention", "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization", "EmbedLayerNormalization", "FastGelu",
    "BiasGelu", "Gelu", "QuickGelu", "BiasAdd", "BiasSoftmax", "BiasSplitGelu", "GemmFastGelu", "FusedMatMul",
    "FusedConv", "NhwcConv", "GroupNorm", "SkipGroupNorm", "RotaryEmbedding", "RelativePositionBias",
    "GatedRelativePositionBias", "MatMulNBits", "MatMulBnb4", "QAttention", "QEmbedLayerNormalization", "QGemm",
    "QLinearAdd", "QLinearMul", "QLinearConv", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSoftmax", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
    "QuantizeLinear", "DequantizeLinear", "MoE", "QMoE", "SparseAttention", "PagedAttention",
)


@dataclass(frozen=True)
class Status:
    """How one ONNX op is covered: `kind` is mapped, handled, excluded or missing; `targets` the canonical
    ops a mapping can produce; `reason` what a handled or excluded op is, or what is missing."""

    domain: str
    op_type: str
    kind: str
    targets: tuple[str, ...] = ()
    reason: str = ""


def _has_cost(target: str) -> bool:
    from ..rules import rule_for  # importing the package registers the rules

    return target in CANONICAL and rule_for(canonical(target)) is not None


def status(domain: str, op_type: str) -> Status:
    """The coverage of one ONNX op ("" or "ai.onnx" for the default domain)."""
    domain = "" if domain == "ai.onnx" else domain
    key = (domain, op_type)
    if onnx_ops.mapper(domain, op_type) is not None:
        targets = onnx_ops.TARGETS[key]
        missing = [t for t in targets if not _has_cost(t)]
        if missing:
            return Status(domain, op_type, "missing", targets, f"no cost rule for {', '.join(missing)}")
        return Status(domain, op_type, "mapped", targets)
    if key in HANDLED:
        return Status(domain, op_type, "handled", reason=HANDLED[key])
    if key in EXCLUDED:
        return Status(domain, op_type, "excluded", reason=EXCLUDED[key])
    return Status(domain, op_type, "missing", reason="no mapping, no handling and no reasoned exclusion")


@lru_cache(maxsize=None)
def _ort_schemas() -> Optional[tuple[tuple[str, str], ...]]:
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        return tuple(sorted({(s.domain, s.name) for s in ort_state.get_all_operator_schema()}))
    except (ImportError, AttributeError):
        return None


def default_domain_ops(max_opset: int = MAX_OPSET) -> frozenset[str]:
    """Every default-domain op with a schema since `max_opset` or earlier, and the ones onnxruntime adds."""
    ops = {s.name for s in onnx.defs.get_all_schemas_with_history()
           if s.domain in ("", "ai.onnx") and s.since_version <= max_opset}
    known = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain in ("", "ai.onnx")}
    ops |= {name for domain, name in (_ort_schemas() or ()) if domain in ("", "ai.onnx") and name not in known}
    return frozenset(ops)


def contrib_ops() -> frozenset[str]:
    """Every com.microsoft op onnxruntime registers (`CONTRIB_FALLBACK` if it does not say)."""
    schemas = _ort_schemas()
    if schemas is None:
        return frozenset(CONTRIB_FALLBACK)
    return frozenset(name for domain, name in schemas if domain == CONTRIB)


def uncovered(max_opset: int = MAX_OPSET) -> list[Status]:
    """The ops of both sets that have no mapping with cost rules, no handling and no reasoned exclusion."""
    ops = [("", op) for op in sorted(default_domain_ops(max_opset))] + [(CONTRIB, op) for op in sorted(contrib_ops())]
    return [s for s in (status(d, op) for d, op in ops) if s.kind == "missing"]
