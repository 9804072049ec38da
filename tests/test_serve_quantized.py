"""graphperf/serve/graphs.py `with_quantized_linears`: an fp8 --dtype served as FP8 engines run it (W8A8), on the
tiny llama and mixtral graphs."""

import graphperf
from graphperf.serve.graphs import capture_phase, with_quantized_linears

FP8 = "float8_e4m3fn"


def _linear(node, g):
    w = g.values[node.inputs[1]] if len(node.inputs) > 1 and node.inputs[1] is not None else None
    return node.op.name == "matmul" and w is not None and w.kind == "weight"


def test_the_decoders_linear_layers_read_fp8_and_write_bf16():
    g = capture_phase("llama3-8b", "tiny", "decode", 2, 17, "bfloat16")
    q = with_quantized_linears(g, FP8)
    linears = [n for n in q.nodes if _linear(n, q)]
    assert len(linears) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the LM head
    for n in linears:
        x, w, y = (q.values[v].type for v in (n.inputs[0], n.inputs[1], n.outputs[0]))
        if n.module.startswith("lm_head"):  # kept in bf16, as the FP8 recipes keep it
            assert (x.dtype, w.dtype) == ("bfloat16", "bfloat16")
        else:
            assert (x.dtype, w.dtype, y.dtype) == (FP8, FP8, "bfloat16")
    # every activation there feeds only linear layers: the quantization is fused into its producer, no cast
    assert not any(n.op.name == "cast" for n in q.nodes)
    embedding = next(v for v in q.weights() if "embed" in v.name)
    assert embedding.type.dtype == "bfloat16"
    # the FLOPs are the bf16 graph's; the linear layers move fewer bytes
    before, after = graphperf.count(g), graphperf.count(q)
    assert [c.cost.flops for c in before] == [c.cost.flops for c in after]
    assert sum(c.cost.bytes for c in after) < sum(c.cost.bytes for c in before)
    assert g.values[linears[0].inputs[1]].type.dtype == "bfloat16"  # the input graph is left alone


def test_an_activation_read_by_other_ops_too_is_cast_once():
    """mixtral: the router's input also feeds the experts' gather, so a cast quantizes it for the router."""
    g = capture_phase("mixtral-8x7b", "tiny", "decode", 4, 17, "bfloat16")
    q = with_quantized_linears(g, FP8)
    casts = [n for n in q.nodes if n.op.name == "cast" and n.source_op == "graphperf.serve.quantize"]
    assert casts and all(n.module.endswith("router") for n in casts)
    for c in casts:
        x, y = (q.values[v].type for v in (c.inputs[0], c.outputs[0]))
        assert (x.dtype, y.dtype, x.shape) == ("bfloat16", FP8, y.shape)
        readers = [n for n in q.nodes if c.outputs[0] in n.inputs]
        assert len(readers) == 1 and _linear(readers[0], q)
    counts = graphperf.count(q)
    assert not [c for c in counts if c.cost is None]
    cast = next(c for c in counts if c.node.name == casts[0].name)
    x = q.values[casts[0].inputs[0]].type
    assert cast.cost.bytes == x.numel * 2 + x.numel * 1  # read bf16, write fp8
