"""The activation memory of a training step: the peak of live tensors over the forward and over the backward,
without counting a tensor twice.

One device holds, during a step, its weights and AdamW's states (static), plus the activations live at the moment
(passes/liveness.py: a tensor is live from its producer to its last consumer, a graph output to the graph's end,
a non-weight graph input from the first node to its last use). So:

- the **forward's peak** holds its temporaries and the activations it saves for the backward (its outputs, live to
  its end);
- the **backward's peak** holds the saved activations still alive at that node (the backward graph's inputs: alive
  from its start to their last use), the gradients produced so far (its outputs, live to its end) and its own
  temporaries. The saved activations are *in* this peak: adding them to it again counts them twice;
- the forward's **views of weights** saved for the backward (``t(w)`` before a GEMM, a slice of a rotary buffer) are
  inputs of the backward graph but share the weights' storage: they are weight memory, so `activation_graph`
  relabels them as weights before the backward's peak is taken, and `saved_activation_bytes` leaves them out.

Memory per device = static + ``max(forward peak, backward peak, gradients)`` (`step_memory`, through
graphperf/train/zero.py's `sharded_memory`); the saved activations are reported apart (``saved_activations_bytes``),
as information. Not modelled: two saved tensors that are views of one forward storage (a ``view`` and its base both
saved) are counted once each, so the peaks are somewhat high (about 4% of the saved bytes for gpt2 and llama3-8b).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Optional, Sequence

from graphperf.ir import Graph

__all__ = ["weight_views", "saved_activation_bytes", "activation_graph", "step_memory"]


def weight_views(forward: Graph) -> set[str]:
    """The forward's weights (parameters and buffers) and every value that is a view of one (a free op, as
    passes/liveness.py counts views, whose first input is a weight or a view of one): storage of the weights."""
    from graphperf.rules.registry import is_free

    views = {v.name for v in forward.weights()}
    for node in forward.nodes:
        if is_free(node.op) and node.inputs and node.inputs[0] in views:
            views.update(node.outputs)
    return views


def saved_activation_bytes(forward: Graph, backward: Graph) -> int:
    """Bytes of the activations the forward saves for the backward: the backward graph's non-weight inputs, less
    the views of weights."""
    views = weight_views(forward)
    return sum(v.type.nbytes for v in backward.values.values()
               if v.kind == "input" and v.type is not None and v.name not in views)


def activation_graph(forward: Graph, backward: Graph) -> Graph:
    """`backward` with its inputs that are views of the forward's weights relabelled ``weight``, so that
    `peak_activation_memory` counts them as the weights they alias (nowhere), and every other input (a saved
    activation) live from the backward's start to its last use. The graph's nodes are unchanged.

    Example
    -------
    >>> from graphperf.ir import Node, TensorType, Value
    >>> from graphperf.ops import canonical
    >>> from graphperf.passes.liveness import peak_activation_memory
    >>> t = TensorType((256,), "float32")  # 1 KiB
    >>> fw = Graph("fw", [Node("v", canonical("view"), "t", ("w",), ("wt",))],
    ...            {"w": Value("w", t, "weight"), "wt": Value("wt", t, producer="v")}, ["wt"])
    >>> bw = Graph("bw", [Node("n", canonical("relu"), "relu", ("wt",), ("g",))],
    ...            {"wt": Value("wt", t, "input"), "g": Value("g", t, producer="n")}, ["g"])
    >>> peak_activation_memory(bw).bytes, peak_activation_memory(activation_graph(fw, bw)).bytes
    (2048, 1024)
    """
    views = weight_views(forward)
    values = {k: replace(v, kind="weight") if v.kind == "input" and k in views else v
              for k, v in backward.values.items()}
    return Graph(backward.name, list(backward.nodes), values, list(backward.outputs), dict(backward.meta))


def step_memory(forward: Graph, backward: Graph, parameters: Sequence, *, zero: int = 0, dp: int = 1,
                handoffs: Optional[Mapping[str, Sequence[str]]] = None, target=None, plan=None,
                **extra: int) -> dict[str, Any]:
    """Bytes one device holds in a training step under ZeRO stage `zero` (0: DDP), by component (graphperf/train/
    zero.py `sharded_memory`): the forward's weights (parameters and buffers), the gradients, AdamW's fp32 moments
    of the parameters that have a gradient (counted whether or not the step is timed), and the larger of the two
    peaks of live tensors (module docstring), the backward's taken on `activation_graph`; for stages 2 and 3 with
    each gradient handed off after the node `handoffs` names (`peak_with_handoffs`). `parameters`: objects with
    ``numel``, ``nbytes`` and ``gradient`` (graphperf/train/capture.py's `Parameter`); `extra`: stage 3's
    ``root_bytes`` and ``max_unit_bytes``. With activation checkpointing (`plan`, graphperf/train/checkpoint.py's
    `CheckpointPlan`) both peaks and the saved bytes are taken on `plan.memory_graphs`: the checkpointed layers'
    activations dropped after the forward, their inputs kept, each layer's recomputed before its backward; the
    bytes dropped are reported as ``recomputed_activations_bytes``.

    Example
    -------
    >>> from graphperf.ir import Node, TensorType, Value
    >>> from graphperf.ops import canonical
    >>> from graphperf.train.capture import Parameter
    >>> t = TensorType((256,), "float32")  # 1 KiB
    >>> fw = Graph("fw", [Node("a", canonical("relu"), "relu", ("x",), ("h",))],
    ...            {"x": Value("x", t, "input"), "w": Value("w", t, "weight"), "h": Value("h", t, producer="a")},
    ...            ["h"])
    >>> bw = Graph("bw", [Node("b", canonical("relu"), "relu", ("h",), ("g",))],
    ...            {"h": Value("h", t, "input"), "g": Value("g", t, producer="b")}, ["g"])
    >>> m = step_memory(fw, bw, [Parameter("w", 256, "float32", 1024, "g")])
    >>> m["saved_activations_bytes"], m["backward_peak_activation_bytes"], m["needed_bytes"] == 1024 + 2048 + 2048
    (1024, 2048, True)
    """
    from graphperf.passes.liveness import peak_activation_memory

    from .zero import peak_with_handoffs, sharded_memory

    dropped = 0
    if plan is not None:
        dropped = sum(backward.values[v].type.nbytes for v in plan.dropped_values)
        forward, backward = plan.memory_graphs(forward, backward)
    graph = activation_graph(forward, backward)
    peak = peak_with_handoffs(graph, handoffs or {}, dp) if zero >= 2 else peak_activation_memory(graph).bytes
    out = sharded_memory(zero, dp, parameter_bytes=sum(p.nbytes for p in parameters),
                          weight_bytes=sum(v.type.nbytes for v in forward.weights() if v.type is not None),
                          gradient_bytes=sum(p.nbytes for p in parameters if p.gradient is not None),
                          updated_numel=sum(p.numel for p in parameters if p.gradient is not None),
                          saved_bytes=saved_activation_bytes(forward, backward),
                          forward_peak_bytes=peak_activation_memory(forward).bytes, backward_peak_bytes=peak,
                          target=target, **extra)
    if plan is not None:
        out["recomputed_activations_bytes"] = dropped
    return out
