"""Sequence parallelism as a rewrite of a tensor-parallel graph (Megatron-LM; Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models").

`shard_sequence_parallel(tp_graph)` takes the graph one device of a ``tp``-way tensor-parallel group runs
(`passes.shard.shard_tensor_parallel`: ``meta["tensor_parallel"] = tp``) and returns a new `Graph` (the input is
never mutated) in which the work tensor parallelism leaves replicated (residual adds, RMSNorm/LayerNorm, dropout,
pointwise ops between the blocks) runs on ``1/tp`` of the tokens on each device:

- every ``all_reduce`` after a row-parallel matmul (o_proj, down_proj) or the vocab-parallel embedding becomes a
  ``reduce_scatter`` over the tokens: the device keeps the reduced sum of its ``N/tp`` tokens;
- the nodes after it follow on ``N/tp`` tokens: pointwise ops (residual add, dropout, casts, the norm's
  multiplies), the norms and softmax and the reductions over the hidden axis, and the views that keep the tokens
  leading; a replicated activation they read (an MoE block's output) is sliced locally, without communication;
- an ``all_gather`` over the tokens sits in front of the next reader that needs every token: the next layer's
  q/k/v or MLP gate/up projections (one gather shared by the readers of a value, as Megatron gathers once for its
  fused QKV), the MoE router, the LM head (module ``lm_head``: the vocab-parallel head reads all tokens, so the final
  norm runs on ``N/tp`` tokens and its output is gathered, before the head or before a view of the head's module
  such as serve's last-position slice), and a graph output (gathered back to the type the TP graph gives it).

The token axis is the flattened ``N = B * T`` tokens of the step, not the sequence ``T`` alone: NCCL's
reduce_scatter and all_gather split a buffer into ``tp`` contiguous chunks, and in this project's batch-first
``[B, T, hidden]`` activations a contiguous chunk is a run of the flattened tokens (Megatron gets sequence chunks
from the same rule because its activations are sequence-first ``[s, b, h]``). The region's work is per token, so
only the count ``N/tp`` matters, and a decode step (``T = 1``) whose batch divides by ``tp`` is split as well. A
split value keeps its rank: ``[B, T, ...]`` becomes ``[N/(tp*T), T, ...]`` when the chunk holds whole sequences,
else ``[1, N/tp, ...]`` (`token_shard`); a value whose leading dims multiply to ``N`` (``[B*T, hidden]``) is a
token value too.

Bytes on the wire (graphperf/rules/collective.py, ring): the payload ``S`` of a reduce_scatter is its input and of
an all_gather its output, both the full ``N * hidden * itemsize`` activation; each sends ``(tp-1)/tp * S``, so one
reduce_scatter plus one all_gather carry ``2 (tp-1)/tp * S``, the ring all_reduce's bytes, in ``tp-1`` steps each
(NCCL runs both as rings: against a TP graph priced with a tree or NVLS all_reduce the two differ).
Per decoder layer the two all_reduces become two reduce_scatters and two all_gathers (the embedding's all_reduce a
reduce_scatter; one more all_gather before the LM head). The collectives carry ``group_size`` = tp, ``algorithm``
``"ring"`` and ``tokens`` = N; names end in ``_reduce_scatter`` / ``_sp_all_gather``, modules are those of the
node replaced or of the first reader.

Refusals: the token count not divisible by tp (a decode step with ``B * T < tp``, or not a multiple) returns the
TP graph unchanged with a `Refusal` of kind ``indivisible``; a TP graph with no all_reduce after a row-parallel
matmul returns it unchanged with one of kind ``not_found``. An all_reduce whose payload is not over the ``N``
tokens (an MoE block's expert slots ``[E, C, hidden]``) stays, and so does a node that reads a token-split value
but cannot run on a share of the tokens (a reduction over the tokens, a view that mixes them, an op without a rule
here): its split inputs are gathered first and it runs on all tokens; both are listed as `Refusal`s of kind
``replicated``. A graph that is not tensor-parallel is a one-line `UsageError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from graphperf.errors import UsageError
from graphperf.ir import Graph, Node, TensorType, Value
from graphperf.ops import NORM_OPS, POINTWISE_OPS, ROW_REDUCTIONS, canonical, op_name

from .result import PassResult, Refusal, RefusalKind, graph_pass

__all__ = ["SequenceParallelResult", "shard_sequence_parallel", "token_shard"]

_RULE = "sequence_parallel"


@dataclass(frozen=True, kw_only=True)
class SequenceParallelResult(PassResult):
    """The sequence-parallel graph, the tensor-parallel degree, the step's tokens ``N`` and the ``N/tp`` each device
    holds between the blocks, the collectives inserted (graph order) and the refusals; a `PassResult` whose one
    record is `summary()`. Build it with `SequenceParallelResult.of`."""

    tp: int
    tokens: int
    collectives: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, graph: Graph, tp: int, tokens: int, collectives=(), refused=(), modified: bool = True):
        collectives, refused = list(collectives), list(refused)
        return cls(graph, modified, [_summary(graph, tp, tokens, collectives, refused)], refused, tp=tp,
                   tokens=tokens, collectives=collectives)

    @property
    def tokens_per_device(self) -> int:
        """``N / tp`` when the graph was split, else ``N``."""
        return self.summary()["tokens_per_device"]

    def summary(self) -> dict:
        """``{"rewrite": "sequence_parallel", "tp", "tokens", "tokens_per_device", "collectives": {op: n},
        "refused"}``."""
        return _summary(self.graph, self.tp, self.tokens, self.collectives, self.refused)


def _summary(graph: Graph, tp: int, tokens: int, collectives: list, refused: list) -> dict:
    by_name = {n.name: n for n in graph.nodes}
    ops: dict[str, int] = {}
    for name in collectives:
        ops[by_name[name].op.name] = ops.get(by_name[name].op.name, 0) + 1
    split = bool(collectives) and tokens % tp == 0
    return {"rewrite": "sequence_parallel", "tp": tp, "tokens": tokens,
            "tokens_per_device": tokens // tp if split else tokens, "collectives": dict(sorted(ops.items())),
            "refused": len(refused)}


def _lead(t: Optional[TensorType], tokens: int) -> Optional[int]:
    """The number of leading dims of `t` that multiply to `tokens` (the fewest), or None."""
    if t is None:
        return None
    prod = 1
    for j, size in enumerate(t.shape):
        prod *= size
        if prod == tokens:
            return j + 1
        if prod > tokens or prod == 0:
            return None
    return None


def token_shard(t: TensorType, tokens: int, tp: int) -> TensorType:
    """`t`, whose leading dims hold the `tokens`, with ``tokens / tp`` of them (a contiguous chunk of the flattened
    tokens) and its rank kept: the leading dims become ``(1, ..., c / inner, *inner_dims)`` for the most trailing
    token dims whose product ``inner`` divides the chunk ``c``.

    >>> [token_shard(TensorType((2, 16, 64), "bfloat16"), 32, tp).shape for tp in (2, 4)]  # prefill, B 2, T 16
    [(1, 16, 64), (1, 8, 64)]
    >>> token_shard(TensorType((4, 1, 64), "bfloat16"), 4, 2).shape  # decode: B 4, T 1
    (2, 1, 64)
    >>> token_shard(TensorType((32, 64), "bfloat16"), 32, 4).shape  # tokens flattened
    (8, 64)
    """
    j = _lead(t, tokens)
    if j is None or tokens % tp:
        raise ValueError(f"{t} does not lead with {tokens} tokens divisible by {tp}")
    lead, chunk = t.shape[:j], tokens // tp
    for i in range(j):
        inner = math.prod(lead[i + 1:])
        if chunk % inner == 0:
            return TensorType((*(1,) * i, chunk // inner, *lead[i + 1:], *t.shape[j:]), t.dtype)
    raise AssertionError("unreachable: inner = 1 divides the chunk")


class _Splitter:
    """One walk over the TP graph in order, deciding per node whether it runs on the device's tokens."""

    def __init__(self, g: Graph, tp: int, tokens: int, convert: set[str]):
        self.g, self.tp, self.tokens, self.convert = g, tp, tokens, convert
        self.types: dict[str, TensorType] = {}  # token-split value -> its per-device type
        self.gathered: dict[str, str] = {}  # split value -> its all-tokens copy
        self.sliced: dict[str, str] = {}  # replicated value -> this device's tokens of it (a view)
        self.new_types: dict[str, TensorType] = {}  # values the pass creates
        self.nodes: list[Node] = []
        self.collectives: list[str] = []
        self.refused: list[Refusal] = []
        self.attrs = {"group_size": tp, "algorithm": "ring", "tokens": tokens}

    def orig(self, name: str) -> TensorType:
        return self.g.values[name].type

    def shard(self, name: str) -> TensorType:
        return token_shard(self.orig(name), self.tokens, self.tp)

    def emit_collective(self, name: str, op: str, src: str, dst: str, module: str) -> None:
        self.nodes.append(Node(name, canonical(op), f"graphperf.sequence_parallel.{op}", (src,), (dst,),
                               dict(self.attrs), module))
        self.collectives.append(name)

    def gather(self, name: str, module: str) -> str:
        if name not in self.gathered:
            full = f"{name}__all_tokens"
            self.new_types[full] = self.orig(name)
            self.emit_collective(f"{name}_sp_all_gather", "all_gather", name, full, module)
            self.gathered[name] = full
        return self.gathered[name]

    def slice(self, name: str, module: str) -> str:
        if name not in self.sliced:
            local = f"{name}__my_tokens"
            self.new_types[local] = self.shard(name)
            self.nodes.append(Node(f"{name}_sp_slice", canonical("view"), "graphperf.sequence_parallel.slice",
                                   (name,), (local,), {}, module))
            self.sliced[name] = local
        return self.sliced[name]

    def run(self) -> None:
        for node in self.g.nodes:
            if node.name in self.convert:
                base = node.name[:-len("_all_reduce")] if node.name.endswith("_all_reduce") else node.name
                self.emit_collective(f"{base}_reduce_scatter", "reduce_scatter", node.inputs[0], node.outputs[0],
                                     node.module)
                self.types[node.outputs[0]] = self.shard(node.outputs[0])
            elif not any(i in self.types for i in node.inputs if i is not None):
                self.nodes.append(node)
            else:
                reason = self.why_not(node)
                if reason:
                    self.run_on_all_tokens(node, reason)
                else:
                    self.follow(node)

    def why_not(self, node: Node) -> str:
        """'' when `node` can run on this device's tokens, else the reason it cannot."""
        op = op_name(node.op)
        if op == "matmul":
            return "a matmul reads all tokens"
        leads = [_lead(self.orig(o), self.tokens) for o in node.outputs]
        if None in leads or len(set(leads)) != 1:
            return f"{op}: an output does not lead with the {self.tokens} tokens"
        j = leads[0]
        out = self.orig(node.outputs[0])
        trailing = out.rank - j
        if op in POINTWISE_OPS:
            for i in node.inputs:
                if i is None:
                    continue
                t = self.orig(i)
                spans = any(t.shape[k] > 1 for k in range(t.rank) if k + out.rank - t.rank < j)
                if i in self.types or spans:
                    lead = _lead(t, self.tokens)
                    if lead is None or t.rank - lead != trailing:
                        return f"{op}: input {i} ({t}) spans the tokens in another layout"
            return ""
        if op in ("view", "reshape_copy"):
            return ""
        x = node.inputs[0]
        if x not in self.types or any(i in self.types for i in node.inputs[1:] if i is not None):
            return f"{op}: a split value is not its first input"
        xt = self.orig(x)
        j_in = _lead(xt, self.tokens)
        if op in NORM_OPS:
            axis = node.attrs.get("axis")
            norm_numel = node.attrs.get("norm_numel")
            if isinstance(axis, int) and axis % xt.rank < j_in:
                return f"{op} along the tokens"
            if op == "group_norm" or (norm_numel and norm_numel > math.prod(xt.shape[j_in:])):
                return f"{op} normalises over the tokens"
            return ""
        if op in ROW_REDUCTIONS:
            axes = node.attrs.get("axes")  # absent in captured graphs: then the token dims must come out whole
            if out.shape[:j] != xt.shape[:j_in] or any(a % xt.rank < j_in for a in axes or ()):
                return f"{op} over the tokens"
            return ""
        return f"{op}: no sequence-parallel rule (it runs on all tokens)"

    def follow(self, node: Node) -> None:
        inputs = []
        for i in node.inputs:
            if i is not None and i not in self.types and self.spans(node, i):
                i = self.slice(i, node.module)
            inputs.append(i)
        for o in node.outputs:
            self.types[o] = self.shard(o)
        self.nodes.append(Node(node.name, node.op, node.source_op, tuple(inputs), node.outputs, node.attrs,
                               node.module) if tuple(inputs) != node.inputs else node)

    def spans(self, node: Node, name: str) -> bool:
        t, out = self.orig(name), self.orig(node.outputs[0])
        j = _lead(out, self.tokens)
        return any(t.shape[k] > 1 for k in range(t.rank) if k + out.rank - t.rank < j)

    def run_on_all_tokens(self, node: Node, reason: str) -> None:
        if op_name(node.op) != "matmul" and node.module != "lm_head":  # the layout (next block, LM head), no refusal
            self.refused.append(Refusal(_RULE, RefusalKind.REPLICATED, f"{node.name} runs on all tokens: {reason}",
                                        {"node": node.name, "op": str(node.op)}))
        inputs = tuple(self.gather(i, node.module) if i in self.types else i for i in node.inputs)
        self.nodes.append(Node(node.name, node.op, node.source_op, inputs, node.outputs, node.attrs, node.module))

    def graph(self) -> Graph:
        """The new graph: a graph output left split is renamed ``<name>__shard`` and gathered back to its TP type
        under its own name (its existing gather, if a reader made one, writes it)."""
        rename: dict[str, str] = {}
        tail: list[Node] = []
        for o in self.g.outputs:
            if o not in self.types:
                continue
            local = rename[o] = f"{o}__shard"
            self.new_types[local] = self.types.pop(o)
            if o in self.gathered:
                rename[self.gathered[o]] = o
                del self.new_types[self.gathered[o]]
            else:
                name = f"{o}_sp_all_gather"
                tail.append(Node(name, canonical("all_gather"), "graphperf.sequence_parallel.all_gather", (local,),
                                 (o,), dict(self.attrs), self.module_of(o)))
                self.collectives.append(name)
        nodes = []
        for n in self.nodes:
            ins = tuple(rename.get(i, i) if i is not None else None for i in n.inputs)
            outs = tuple(rename.get(o, o) for o in n.outputs)
            nodes.append(n if (ins, outs) == (n.inputs, n.outputs) else
                         Node(n.name, n.op, n.source_op, ins, outs, n.attrs, n.module))
        nodes += tail
        producer = {o: n.name for n in nodes for o in n.outputs}
        values = {name: Value(name, self.types.get(name, v.type), v.kind, producer.get(name, v.producer),
                              v.source_name) for name, v in self.g.values.items()}
        values |= {name: Value(name, t, "activation", producer[name]) for name, t in self.new_types.items()}
        meta = {**self.g.meta, "sequence_parallel": self.tp}
        return Graph(self.g.name, nodes, values, self.g.outputs, meta)

    def module_of(self, name: str) -> str:
        producer = self.g.values[name].producer
        return next((n.module for n in self.g.nodes if n.name == producer), "")


def _row_parallel_reduces(graph: Graph) -> list[Node]:
    """The all_reduces the TP pass puts after a row-parallel matmul or the vocab-parallel embedding."""
    producer = {o: n for n in graph.nodes for o in n.outputs}
    return [n for n in graph.nodes if op_name(n.op) == "all_reduce" and n.inputs and n.inputs[0] in producer
            and op_name(producer[n.inputs[0]].op) in ("matmul", "gather")]


@graph_pass("shard_sequence_parallel", requires={"canonical"})
def shard_sequence_parallel(tp_graph: Graph) -> SequenceParallelResult:
    """The graph one device of the tensor-parallel group of `tp_graph` runs with sequence parallelism (module
    docstring); the TP graph itself, with a `Refusal`, where its tokens do not divide over the group.

    >>> import graphperf
    >>> from graphperf.passes import canonicalize
    >>> from graphperf.passes.shard import shard_tensor_parallel
    >>> g = canonicalize(graphperf.load_graph(graphperf.ModelRequest(
    ...     "llama3-8b", config="tiny", phase="prefill", batch=2, seq=16))[0]).graph
    >>> r = shard_sequence_parallel(shard_tensor_parallel(g, 2).graph)
    >>> r.summary()
    {'rewrite': 'sequence_parallel', 'tp': 2, 'tokens': 32, 'tokens_per_device': 16, \
'collectives': {'all_gather': 5, 'reduce_scatter': 5}, 'refused': 0}
    """
    tp = tp_graph.meta.get("tensor_parallel", 1)
    if not isinstance(tp, int) or tp < 2:
        raise UsageError(f"{tp_graph.name}: sequence parallelism rewrites a tensor-parallel graph; run "
                         "shard_tensor_parallel(graph, tp) with tp >= 2 first")
    reduces = _row_parallel_reduces(tp_graph)
    if not reduces:
        return SequenceParallelResult.of(tp_graph, tp, 0, refused=[Refusal(
            _RULE, RefusalKind.NOT_FOUND, "no all_reduce after a row-parallel matmul to turn into a reduce_scatter")],
            modified=False)
    first = tp_graph.values[reduces[0].inputs[0]].type
    tokens = math.prod(first.shape[:-1])
    if tokens % tp:
        return SequenceParallelResult.of(tp_graph, tp, tokens, modified=False, refused=[Refusal(
            _RULE, RefusalKind.INDIVISIBLE,
            f"the step's {tokens} tokens (batch * sequence) do not divide over the {tp} devices of the group; "
            "each all_reduce stays", {"nodes": [n.name for n in reduces], "size": tokens})])
    convert, refused = set(), []
    for n in reduces:
        t = tp_graph.values[n.inputs[0]].type
        if math.prod(t.shape[:-1]) != tokens or n.attrs.get("group_size") != tp:
            refused.append(Refusal(_RULE, RefusalKind.REPLICATED,
                                   f"{n.name} reduces {t}, not the {tokens} tokens of the step: it stays an all_reduce",
                                   {"node": n.name, "op": str(n.op)}))
        else:
            convert.add(n.name)
    if not convert:
        return SequenceParallelResult.of(tp_graph, tp, tokens, refused=refused, modified=False)
    s = _Splitter(tp_graph, tp, tokens, convert)
    s.run()
    return SequenceParallelResult.of(s.graph(), tp, tokens, s.collectives, refused + s.refused)
