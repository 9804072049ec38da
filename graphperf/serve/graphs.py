"""The graphs one device runs while serving: a prefill and a decode step, captured once, sharded, retyped.

- `capture_phase` captures a models/ workload on meta tensors (`graphperf.load_graph`) and canonicalizes it;
- `last_token_logits` makes a prefill compute the LM head for the last position only, as serving engines do
  (vLLM, TensorRT-LLM: the prompt's other logits are never used): a free view selects ``x[:, -1:]``;
- `with_precision` applies ``--dtype`` / ``--kv-dtype`` (passes/precision.py: weights and activations, KV cache);
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

__all__ = ["capture_phase", "last_token_logits", "with_precision", "with_kv_len", "kv_inputs"]


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
