"""Attention fusion on graphs graphperf did not write (issue 13): Hugging Face decoders exported by torch.export
with eager attention (the matmul -> scale -> mask -> softmax -> cast/dropout -> matmul decomposition each
architecture writes its own way) and GPT-2 through the dynamo ONNX exporter (its NaN guard ``Where(IsNaN(p), 0,
p)`` reads the probabilities twice). Each attention block fuses into one flash kernel, FLOPs are conserved and
the bytes saved are at least the score matrix's round trip (written once, read once) per layer."""

import pytest
import torch

import graphperf
from graphperf.passes.whatif import whatif
from graphperf.target import load_target
from tests import corpus

DECODERS = ("llama", "mistral", "qwen2", "phi3", "gemma2", "gpt2", "gpt-neox", "falcon", "opt", "bloom")


def _eager_export(name: str):
    module, kwargs = corpus.build(name)
    previous = module.config._attn_implementation
    module.set_attn_implementation("eager")
    try:
        return torch.export.export(module, (), kwargs, strict=False)
    finally:
        module.set_attn_implementation(previous)


def _check_fused(graph, layers: int):
    result = whatif(graph, load_target("h100"), {"name": graph.name}, fuse=["attention"])
    fused = [r for r in result.rewrites if r.get("rewrite") == "fuse"][0]
    assert fused["groups_formed"] == layers, result.refused
    before, after = result.before.totals, result.after.totals
    assert after["flops"] == before["flops"] and after["matrix_flops"] == before["matrix_flops"]
    for group in fused["groups"]:
        assert group["member_ops"][0] == "matmul" and group["member_ops"][-1] == "matmul"
        assert "softmax" in group["member_ops"] and group["kernel"] == "flash_attention"
    # each softmax writes one score-sized tensor; unfused, it is written once and read once more
    round_trip = sum(2 * r.bytes_written for r in result.before.nodes if r.op == "softmax")
    assert before["bytes"] - after["bytes"] >= round_trip > 0
    return fused


@pytest.mark.parametrize("name", DECODERS)
def test_eager_attention_of_hf_decoders_fuses_through_torch_export(name):
    _check_fused(graphperf.capture(_eager_export(name)), layers=2)  # every corpus decoder has two layers


def test_gpt2_from_the_dynamo_onnx_exporter_fuses_both_attention_blocks(tmp_path):
    module, kwargs = corpus.build("gpt2")
    path = tmp_path / "gpt2.onnx"
    torch.onnx.export(module, (), str(path), kwargs=kwargs, dynamo=True, opset_version=18)
    graph, _ = graphperf.load_graph(graphperf.ModelRequest(str(path)))
    assert sum(n.op.name == "isnan" for n in graph.nodes) == 2  # the exporter's NaN guard is there
    _check_fused(graph, layers=2)


def test_each_fused_group_reports_its_members_time_and_bytes_saved(tmp_path):
    """The what-if lists, per fused group, the nodes, the bytes no longer moved and the time before/after, in the
    terminal table, the JSON and the HTML page; the bytes saved sum to the report's drop in bytes moved."""
    import json

    from graphperf.cli import main

    out = tmp_path / "w.json"
    args = ["whatif", "gpt2", "--config", "tiny", "--attention", "eager", "--fuse", "attention", "--target", "h200"]
    assert main([*args, "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    groups = doc["fused_groups"]
    assert len(groups) == 2 and all(g["members"] and g["after_s"] < g["before_s"] for g in groups)
    saved = doc["before"]["totals"]["bytes"] - doc["after"]["totals"]["bytes"]
    assert sum(g["bytes_saved"] for g in groups) == saved > 0
    page = tmp_path / "w.html"
    assert main([*args, "-o", str(page)]) == 0
    assert "bytes saved" in page.read_text()



def test_onnxruntime_transformer_optimizer_output_fuses_too(tmp_path):
    """onnxruntime's transformer optimizer rewrites the dynamo export (SkipLayerNormalization, Gemm) but leaves its
    attention decomposition alone (its fusion does not match the NaN guard): the attention what-if still fuses
    both blocks, with the matrix FLOPs of the unoptimized export and every node counted."""
    from onnxruntime.transformers import optimizer

    module, kwargs = corpus.build("gpt2")
    exported = tmp_path / "gpt2.onnx"
    torch.onnx.export(module, (), str(exported), kwargs=kwargs, dynamo=True, opset_version=18)
    optimized = tmp_path / "gpt2_ort.onnx"
    # model_type "bert" runs the generic fusions (the "gpt2" one expects the legacy exporter's Gemm layout)
    optimizer.optimize_model(str(exported), model_type="bert", num_heads=4, hidden_size=64,
                             opt_level=0).save_model_to_file(str(optimized))
    graph, _ = graphperf.load_graph(graphperf.ModelRequest(str(optimized)))
    assert any(n.source_op == "com.microsoft::SkipLayerNormalization" for n in graph.nodes)  # the optimizer ran
    fused = _check_fused(graph, layers=2)
    plain, _ = graphperf.load_graph(graphperf.ModelRequest(str(exported)))
    assert fused["groups_formed"] == 2
    assert graphperf.analyze_graph(graph, load_target("h100"), {"name": "ort"}).totals["matrix_flops"] == \
        graphperf.analyze_graph(plain, load_target("h100"), {"name": "plain"}).totals["matrix_flops"]
