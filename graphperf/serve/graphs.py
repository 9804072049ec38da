"""The graphs one device runs while serving: a prefill and a decode step, captured once, sharded, retyped.

- `capture_phase` captures a models/ workload on meta tensors (`graphperf.load_graph`) and canonicalizes it;
- `last_token_logits` makes a prefill compute the LM head for the last position only, as serving engines do
  (vLLM, TensorRT-LLM: the prompt's other logits are never used): a free view selects ``x[:, -1:]``;
- `with_precision` applies ``--dtype`` / ``--kv-dtype`` (passes/precision.py: weights and activations, KV cache);
- `with_quantized_linears` applies an 8-bit (or narrower) float ``--dtype`` as FP8 engines run it (W8A8: the
  decoder's linear layers read fp8 weights and fp8 activations; everything else stays in the model's dtype);
- `with_kv_len` retypes a decode graph's KV-cache inputs (``[B, Hkv, kv_len, D]``, read only by attention) to
  another context length: the decode step at that length, exact, without capturing again;
- `kv_inputs` names the KV-cache inputs (graph inputs of rank 4, the precision pass's ``kv`` class).

None of them mutates its input graph.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import canonical

__all__ = ["capture_phase", "last_token_logits", "with_precision", "with_quantized_linears", "with_kv_len",
           "kv_inputs"]


@functools.lru_cache(maxsize=8)
def capture_phase(model: str, config: str, phase: str, batch: int, length: int, dtype: str) -> Graph:
    """The canonical graph of `model` in `phase` (prefill: seq=`length`; decode: kv_len=`length`); the last few
    captures are kept (a sweep over tp or targets captures each shape once). Callers never mutate it."""
    from graphperf.passes import canonicalize
    from graphperf.pipeline import ModelRequest, load_graph

    shape = {"seq": length} if phase == "prefill" else {"kv_len": length}
    graph, _ = load_graph(ModelRequest(model, config=config, phase=phase, batch=batch, dtype=dtype, **shape))
    return canonicalize(graph).graph


def kv_inputs(graph: Graph) -> list[str]:
    """The KV-cache inputs of a decode graph: graph inputs of rank 4 (``[B, Hkv, kv_len, D]``)."""
    return [n for n, v in graph.values.items() if v.kind == "input" and v.type is not None and v.type.rank == 4]


def with_kv_len(graph: Graph, kv_len: int) -> Graph:
    """`graph` (a decode step) with its KV-cache inputs retyped to `kv_len` positions (dim 2)."""
    values = dict(graph.values)
    for name in kv_inputs(graph):
        t = values[name].type
        values[name] = replace(values[name], type=TensorType((t.shape[0], t.shape[1], kv_len, t.shape[3]), t.dtype))
    return Graph(graph.name, list(graph.nodes), values, graph.outputs, dict(graph.meta))


def last_token_logits(graph: Graph) -> Graph:
    """A prefill graph whose LM head (module ``lm_head``) reads the last position only; unchanged if none."""
    nodes: list[Node] = []
    values = dict(graph.values)
    done = False
    for node in graph.nodes:
        if not done and node.module == "lm_head" and node.op.name == "matmul":
            x = node.inputs[0]
            t = values[x].type
            if t.rank == 3 and t.shape[1] > 1:
                last = f"{x}__last_position"
                values[last] = Value(last, TensorType((t.shape[0], 1, t.shape[2]), t.dtype), "activation",
                                     f"{node.name}_last_position")
                nodes.append(Node(f"{node.name}_last_position", canonical("view"), "graphperf.serve.last_position",
                                  (x,), (last,), {}, node.module))
                out = node.outputs[0]
                ot = values[out].type
                values[out] = replace(values[out], type=TensorType((ot.shape[0], 1, ot.shape[2]), ot.dtype))
                node = Node(node.name, node.op, node.source_op, (last, *node.inputs[1:]), node.outputs, node.attrs,
                            node.module)
                done = True
        nodes.append(node)
    return Graph(graph.name, nodes, values, graph.outputs, dict(graph.meta))


def with_precision(graph: Graph, dtype: str | None, kv_dtype: str | None) -> Graph:
    """Weights and activations in `dtype`, the KV cache in `kv_dtype` (each None: as captured)."""
    from graphperf.passes.precision import rewrite_precision

    spec = {}
    if dtype is not None:
        spec.update(weights=dtype, activations=dtype)
    if kv_dtype is not None:
        spec["kv"] = kv_dtype
    return rewrite_precision(graph, spec).graph if spec else graph


def _quantized(node: Node, values: dict) -> bool:
    """A linear layer of the decoder: a matmul on a weight, outside the LM head (FP8 recipes keep it in bf16)."""
    w = values[node.inputs[1]] if len(node.inputs) > 1 and node.inputs[1] is not None else None
    return node.op.name == "matmul" and w is not None and w.kind == "weight" and not node.module.startswith("lm_head")


def with_quantized_linears(graph: Graph, dtype: str) -> Graph:
    """`graph` with its decoder's linear layers in `dtype` (an fp8 type), as FP8 serving engines run them (W8A8):

    - the weights of every matmul on a weight outside the LM head are stored in `dtype` (TensorRT-LLM's and vLLM's
      FP8 recipes leave the embedding and the LM head in the model's dtype);
    - such a matmul reads its activation in `dtype` and writes the model's dtype. Where every reader of that
      activation is such a matmul (the norm before q/k/v or gate/up, the SwiGLU product before down), the producer
      writes `dtype` itself: the engines fuse the quantization into it. Otherwise a ``cast`` node quantizes it,
      one per activation (read in the model's dtype, written in `dtype`);
    - everything else (norms' inputs, residuals, attention, the KV cache unless ``--kv-dtype``) keeps its dtype.

    The matrix peak follows the inputs' dtype (`Graph.node_dtype`), so these matmuls run at the fp8 peak.
    """
    values = dict(graph.values)
    consumers = graph.consumers()
    by_name = {n.name: n for n in graph.nodes}
    quantized = {n.name for n in graph.nodes if _quantized(n, values)}
    casts: dict[str, str] = {}  # activation -> its quantized copy, when a cast is needed
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.name in quantized:
            w = node.inputs[1]
            values[w] = replace(values[w], type=TensorType(values[w].type.shape, dtype))
            x = node.inputs[0]
            if all(c in quantized and by_name[c].inputs[0] == x for c in consumers.get(x, [])) \
                    and values[x].kind == "activation":
                values[x] = replace(values[x], type=TensorType(values[x].type.shape, dtype))  # fused into its producer
            else:
                if x not in casts:
                    q = casts[x] = f"{x}__{dtype}"
                    values[q] = Value(q, TensorType(values[x].type.shape, dtype), "activation", f"{node.name}_quantize")
                    nodes.append(Node(f"{node.name}_quantize", canonical("cast"), "graphperf.serve.quantize", (x,),
                                      (q,), {}, node.module))
                node = Node(node.name, node.op, node.source_op, (casts[x], *node.inputs[1:]), node.outputs,
                            node.attrs, node.module)
        nodes.append(node)
    return Graph(graph.name, nodes, values, graph.outputs, dict(graph.meta))
