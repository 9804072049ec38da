"""Activation checkpointing per decoder layer (``torch.utils.checkpoint`` around each layer, torchtitan's "full"
AC; ``every=K``: one layer in K, torchtitan's selective *layer* mode with ``selective_ac_option = K``), derived from
the captured forward and backward graphs.

Layers in the forward graph. A layer is an FSDP unit of passes/fully_shard.py (`parameter_unit`: ``layers.3``);
its first node ``F_k`` is the first non-view node that reads one of its parameters (or a view of one). Layer k
spans the nodes ``[S_k, S_{k+1})``: its boundary ``S_k`` is a position before ``F_k`` where the fewest bytes
cross, i.e. the bytes of the storages produced before the position and read by a non-view node at or after it
(weights and their views excluded, a view's reads counting for its base). That minimum is the layer's input, the
residual stream ``B*T*hidden*itemsize`` (plus anything shared that is read later): a layer's norm prelude (``pow``,
``mean``, ``rsqrt`` before the weight multiply of an RMSNorm) belongs to its layer, not the previous one.
Precisely: ``S_k`` is the earliest thinnest cut after the previous layer's last parameter read (after the root's
last read before ``F_0``, the embedding, for the first layer) and at or before ``F_k``; the last layer ends at the
earliest thinnest cut after its last parameter read and at or before the next
node that reads a root parameter (the final norm's weight, the LM head). `layer_spans` returns them.

What a checkpointed layer changes (`checkpoint_plan`):

- **saved activations**: the backward inputs whose storage was produced in the layer and that no forward node
  after the layer reads are no longer saved (they are dropped after their last forward use; the layer's output,
  which the next module may save, stays); the layer's inputs (values produced before ``S_k``, read in the
  span, not weights) are saved instead, once each: ``kept = saved - U dropped_k + U inputs_k``;
- **backward memory**: layer k's dropped activations are made again just before the layer's backward (the first
  backward node that reads one of them or one of the layer's parameters, or produces one of its gradients), and
  live from there to their last use: `memory_graphs` puts one ``recompute`` node there, reading the layer's inputs
  and producing them, so the liveness analysis (passes/liveness.py) holds one recomputed layer at a time on top of
  what is kept. The recomputation's own temporaries are not counted;
- **time**: the layer's forward nodes run again on the compute stream at that point: ``recompute_s`` of layer k
  is the sum of the projected device times of its forward nodes (`recompute_seconds`). `shifted_ends` moves every
  later backward node's end by it, so the gradients' ready times, and with them the overlap of the all-reduces and
  reduce-scatters, move accordingly. Under FSDP the layer's all-gather before its backward already precedes this
  point (FSDP's pre-backward hook runs before checkpoint's recomputation): no extra all-gather.

Not modelled: the recomputed layer's temporaries, RNG-state saving, torchtitan's op-level selective policy (which
saves matmul outputs and recomputes the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, Value

__all__ = ["parse_checkpointing", "describe", "LayerSpan", "CheckpointPlan", "layer_spans", "checkpoint_plan",
           "saved_names", "recompute_seconds", "recompute_work", "shifted_ends", "RECOMPUTE_OP"]

#: The op of the synthetic node standing for a layer's recomputation in the memory graph (not priced there).
RECOMPUTE_OP = "concat"


def parse_checkpointing(value: Optional[str]) -> int:
    """``--activation-checkpointing`` as the checkpointing period K: 0 for ``none``, 1 for ``full`` (every layer),
    K for ``every=K`` (one layer in K: the layers whose 1-based index is a multiple of K, as torchtitan counts);
    UsageError (one line) otherwise.

    >>> parse_checkpointing("none"), parse_checkpointing("full"), parse_checkpointing("every=2")
    (0, 1, 2)
    """
    text = "none" if value is None else str(value).strip()
    if text == "none":
        return 0
    if text == "full":
        return 1
    if text.startswith("every="):
        k = text[len("every="):]
        if k.isdigit() and int(k) >= 1:
            return int(k)
    raise UsageError(f"--activation-checkpointing {value}: expected none, full or every=K with K a positive integer "
                     "(checkpoint one decoder layer in K)")


def describe(every: int) -> str:
    """The option's spelling for a period: ``none``, ``full``, ``every=K``."""
    return "none" if every == 0 else "full" if every == 1 else f"every={every}"


@dataclass(frozen=True)
class LayerSpan:
    """One decoder layer in the forward graph: its unit name, its nodes ``[start, end)`` (indices and names), the
    values it reads that were produced before it (its inputs, not weights) and the storages it produces."""

    index: int
    unit: str
    start: int
    end: int
    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    produced: frozenset


def _storage(graph: Graph):
    """(base of each value: a view's is its input's base; the set of weights and their views)."""
    from graphperf.rules.registry import is_free

    weights = {n for n, v in graph.values.items() if v.kind == "weight"}
    base = {n: n for n in graph.values}
    for node in graph.nodes:
        if is_free(node.op) and node.inputs and node.inputs[0] is not None:
            for out in node.outputs:
                base[out] = base.get(node.inputs[0], node.inputs[0])
                if node.inputs[0] in weights:
                    weights.add(out)
    return base, weights


def layer_spans(forward: Graph, parameters: Optional[Mapping[str, Sequence[str]]] = None) -> list[LayerSpan]:
    """The decoder layers of a forward graph of graphperf/train/capture.py in run order (module docstring); empty
    when no parameter belongs to a numbered layer."""
    from graphperf.passes.fully_shard import ROOT, parameter_unit
    from graphperf.rules.registry import is_free

    params = dict(forward.meta.get("parameters") or {}) if parameters is None else dict(parameters)
    base, weights = _storage(forward)
    owner = {v: parameter_unit(p) for p, vals in params.items() for v in vals}
    for node in forward.nodes:  # views of a parameter belong to its unit
        if is_free(node.op) and node.inputs and node.inputs[0] in owner:
            for out in node.outputs:
                owner[out] = owner[node.inputs[0]]
    reads: dict[str, list[int]] = {}
    for i, node in enumerate(forward.nodes):
        if is_free(node.op):
            continue
        for unit in {owner[v] for v in node.inputs if v in owner}:
            reads.setdefault(unit, []).append(i)
    layers = sorted((idx[0], unit) for unit, idx in reads.items() if unit != ROOT)
    if not layers:
        return []
    n = len(forward.nodes)
    # crossing[i]: bytes of the storages produced before position i and read by a node at or after i
    produced_at = {name: -1 for name, v in forward.values.items() if v.producer is None}
    for i, node in enumerate(forward.nodes):
        for out in node.outputs:
            produced_at.setdefault(out, i)
    last_read: dict[str, int] = {}
    for i, node in enumerate(forward.nodes):
        if is_free(node.op):  # a view reads nothing: its readers read its base
            continue
        for v in node.inputs:
            if v is not None and v not in weights:
                last_read[base.get(v, v)] = i
    delta = [0] * (n + 2)
    for b, last in last_read.items():
        value = forward.values.get(b)
        if value is None or value.type is None or b in weights:
            continue
        lo = produced_at.get(b, -1) + 1
        if lo <= last:
            delta[lo] += value.type.nbytes
            delta[last + 1] -= value.type.nbytes
    crossing, running = [], 0
    for i in range(n + 1):
        running += delta[i]
        crossing.append(running)

    def cut(lo: int, hi: int) -> int:
        best = min(crossing[lo:hi + 1])
        return min(i for i in range(lo, hi + 1) if crossing[i] == best)

    firsts = [f for f, _ in layers]
    lasts = [reads[u][-1] for _, u in layers]
    root = reads.get(ROOT, [])
    before_first = [i for i in root if i < firsts[0]]  # the embedding: before the first layer
    after_last = [i for i in root if i > lasts[-1]]  # the final norm, the LM head
    starts = [cut(lasts[k - 1] + 1 if k else (before_first[-1] + 1 if before_first else 0), f)
              for k, f in enumerate(firsts)]
    end = cut(lasts[-1] + 1, after_last[0] if after_last else n)
    bounds = starts + [end]
    spans = []
    for k, (_, unit) in enumerate(layers):
        lo, hi = bounds[k], bounds[k + 1]
        nodes = forward.nodes[lo:hi]
        made = {o for node in nodes for o in node.outputs}
        inputs: list[str] = []
        for node in nodes:
            for v in node.inputs:
                if v is not None and v not in made and v not in weights and v not in inputs and v in forward.values:
                    inputs.append(v)
        spans.append(LayerSpan(k, unit, lo, hi, tuple(x.name for x in nodes), tuple(inputs), frozenset(made)))
    return spans


@dataclass(frozen=True)
class CheckpointPlan:
    """Which layers are checkpointed (``every``: 1 full, K one in K) and, per checkpointed layer, the saved
    activations it drops (backward names), its inputs kept instead (forward names, in `spans`), the backward node
    before which it is recomputed, and the backward's names of forward values it names otherwise."""

    every: int
    layers: int
    spans: tuple[LayerSpan, ...]
    dropped: tuple[tuple[str, ...], ...]
    before: tuple[str, ...]
    backward_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def option(self) -> str:
        return describe(self.every)

    @property
    def dropped_values(self) -> set[str]:
        return {v for d in self.dropped for v in d}

    def kept_inputs(self) -> list[str]:
        out: list[str] = []
        for s in self.spans:
            out += [v for v in s.inputs if v not in out]
        return out

    def memory_graphs(self, forward: Graph, backward: Graph) -> tuple[Graph, Graph]:
        """The forward with the dropped activations no longer outputs and the layers' inputs kept to its end; the
        backward with the dropped activations made by one ``recompute`` node per layer, placed before the layer's
        backward and reading its inputs (inputs of the backward graph from its start). Nodes are not priced."""
        from graphperf.ops import canonical

        dropped = self.dropped_values
        kept = self.kept_inputs()
        fw_out = [o for o in forward.outputs if o not in dropped]
        fw_out += [v for v in kept if v not in fw_out]
        fw = Graph(forward.name, list(forward.nodes), dict(forward.values), fw_out, dict(forward.meta))
        values = dict(backward.values)
        name = dict(self.backward_names)
        for v in kept:
            if name.get(v, v) not in values:
                values[name.get(v, v)] = Value(name.get(v, v), forward.values[v].type, "input")
        insert: dict[str, list[Node]] = {}
        for span, drop, at in zip(self.spans, self.dropped, self.before):
            node_name = f"recompute_{span.unit}"
            for v in drop:
                values[v] = Value(v, backward.values[v].type, "activation", node_name)
            insert.setdefault(at, []).append(Node(node_name, canonical(RECOMPUTE_OP), "activation_checkpoint.recompute",
                                                  tuple(name.get(v, v) for v in span.inputs), tuple(drop)))
        nodes: list[Node] = []
        for node in backward.nodes:
            nodes.extend(insert.get(node.name, ()))
            nodes.append(node)
        bw = Graph(backward.name, nodes, values, list(backward.outputs), dict(backward.meta))
        return fw, bw


def checkpoint_plan(forward: Graph, backward: Graph, every: int) -> CheckpointPlan:
    """The layers checkpointed with period `every` (1: all; K: those whose 1-based index is a multiple of K) and
    what each drops (module docstring). UsageError when the graph has no numbered layer."""
    from graphperf.passes.fully_shard import ROOT, fully_shard
    from graphperf.rules.registry import is_free

    from .memory import weight_views

    spans = layer_spans(forward)
    if not spans:
        raise UsageError(f"{forward.name}: --activation-checkpointing needs decoder layers (parameters under a "
                         "numbered module such as layers.3); this model has none")
    chosen = tuple(s for s in spans if (s.index + 1) % every == 0)
    views = weight_views(forward)
    base, _ = _storage(forward)
    fw_name = saved_names(forward, backward)
    saved = [n for n, v in backward.values.items() if v.kind == "input" and v.producer is None and n not in views]
    units = {u.name: u.first_node for u in fully_shard(backward, 1).units if u.name != ROOT}
    position = {n.name: i for i, n in enumerate(backward.nodes)}
    producer = {o: i for i, node in enumerate(forward.nodes) for o in node.outputs}
    kept = {v for s in chosen for v in s.inputs}
    read_at: dict[str, int] = {}  # storage -> its last reader that is not a view
    for i, node in enumerate(forward.nodes):
        if not is_free(node.op):
            for v in node.inputs:
                if v is not None:
                    read_at[base.get(v, v)] = i
    dropped, before = [], []
    for s in chosen:
        stored = {v: base.get(fw_name.get(v, v), fw_name.get(v, v)) for v in saved}
        drop = tuple(v for v in saved if fw_name.get(v, v) not in kept
                     and s.start <= producer.get(stored[v], -1) < s.end and read_at.get(stored[v], -1) < s.end)
        readers = [i for i, node in enumerate(backward.nodes) if any(x in drop for x in node.inputs)]
        candidates = readers[:1] + ([position[units[s.unit]]] if s.unit in units else [])
        dropped.append(drop)
        before.append(backward.nodes[min(candidates)].name if candidates else backward.nodes[-1].name)
    return CheckpointPlan(every, len(spans), chosen, tuple(dropped), tuple(before),
                          {f: b for b, f in fw_name.items()})


def saved_names(forward: Graph, backward: Graph) -> dict[str, str]:
    """{backward input: the forward output it is}: aot_autograd's forward returns the user outputs then the saved
    tensors, in the order the backward takes them (before its ``tangents_*``); a multi-output node's value keeps
    the forward's name in one graph (``attention.1``) and fx's ``getitem_1`` in the other. Names are matched by
    position where the counts and types agree, else left as they are."""
    inputs = [n for n, v in backward.values.items() if v.producer is None and v.kind in ("input", "weight")
              and not n.startswith("tangents")]
    outs = list(forward.outputs)[len(forward.outputs) - len(inputs):] if len(inputs) <= len(forward.outputs) else []
    out = {}
    for b, f in zip(inputs, outs) if len(outs) == len(inputs) else ():
        tb, tf = backward.values[b].type, forward.values[f].type
        if b != f and tb is not None and tf is not None and (tb.shape, tb.dtype) == (tf.shape, tf.dtype):
            out[b] = f
    return out


def recompute_seconds(plan: CheckpointPlan, forward_report) -> dict[str, float]:
    """{backward node: seconds of recomputation run just before it}: each checkpointed layer's forward nodes'
    projected device times (an unknown node counts 0), summed."""
    device = {r.name: (r.device_s or 0.0) for r in forward_report.nodes}
    out: dict[str, float] = {}
    for span, at in zip(plan.spans, plan.before):
        out[at] = out.get(at, 0.0) + sum(device.get(n, 0.0) for n in span.nodes)
    return out


def recompute_work(plan: CheckpointPlan, forward_report) -> tuple[int, int]:
    """(FLOPs, matrix FLOPs) of the recomputed layers' forward nodes."""
    names = {n for s in plan.spans for n in s.nodes}
    rows = [r for r in forward_report.nodes if r.name in names]
    return sum(r.flops or 0 for r in rows), sum(r.matrix_flops or 0 for r in rows)


def shifted_ends(nodes: Sequence[str], ends: Mapping[str, float], extra: Mapping[str, float]) -> dict[str, float]:
    """Each node's end on the compute stream when ``extra[node]`` seconds run just before `node`.

    >>> shifted_ends(["a", "b", "c"], {"a": 1.0, "b": 2.0, "c": 4.0}, {"b": 0.5})
    {'a': 1.0, 'b': 2.5, 'c': 4.5}
    """
    out, shift = {}, 0.0
    for name in nodes:
        shift += extra.get(name, 0.0)
        if name in ends:
            out[name] = ends[name] + shift
    return out
